// EngineClient — the GUI's handle on the engine thread.
//
// It owns the peregrine::Engine (which owns the model and its worker thread), submits requests
// and turns the engine's events into Qt signals emitted on the thread that owns the client (the
// GUI thread). Nothing here blocks on the engine: requests are queued, and events come back
// through one mutex-protected inbox that the engine thread fills and that a single queued
// invocation drains on the GUI thread (the engine callback never touches a QObject directly).
//
// The engine says which text is the model's thinking and which is the answer (it owns the chat
// template and splits the think block); the client passes that on as thinkingText / answerText.
// Streaming text is coalesced: those signals are emitted at most once per
// Options::minTextInterval (16 ms, about 60 updates per second), in stream order, and always
// flushed before the generation's finished / error signal, so no text is ever lost or reordered.
//
// Every generate() ends with exactly one finished(id, ...) or error(id, ...); every loadModel()
// with modelLoaded, modelLoadFailed or modelLoadCancelled (modelLoadProgress before it); every
// unloadModel() with modelUnloaded. Destroying the
// client cancels the running generation (the engine stops within one decode step), drops queued
// requests and joins the engine thread; no signal is emitted after that.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <QTimer>

#include "bridge/bridge_types.h"
#include "peregrine/engine.h"
#include "peregrine/generation_stats.h"

namespace peregrine::app {

class EngineClient : public QObject {
  Q_OBJECT

 public:
  enum class State { NoModel, Loading, Ready, Generating };
  Q_ENUM(State)

  struct Options {
    std::chrono::milliseconds minTextInterval{16};  // text updates at most ~60 per second
  };

  explicit EngineClient(QObject* parent = nullptr);
  explicit EngineClient(Options options, QObject* parent = nullptr);
  ~EngineClient() override;

  // What the app asks for when the user gives no settings: every core, an 8k context.
  static peregrine::ModelOptions recommendedModelOptions();

  // Replaces the current model (the engine frees the old one first, so after a failed load no
  // model is loaded). Returns the request id.
  quint64 loadModel(const QString& path, const peregrine::ModelOptions& options = recommendedModelOptions());
  quint64 unloadModel();
  // Starts an answer to request.messages (queued behind anything already submitted).
  quint64 generate(const GenerationRequest& request);
  // Cancels one generation, running or queued; it finishes with reason "cancelled".
  void stop(quint64 generationId);
  // Cancels every generation (and model load) submitted so far.
  void stopAll();
  // Cancels every model load still queued or running; each ends with modelLoadCancelled, and no
  // model is loaded afterwards (the engine frees the old model when a load starts).
  void cancelLoads();

  State state() const { return state_; }
  bool hasModel() const { return model_.has_value(); }
  const std::optional<ModelSummary>& model() const { return model_; }
  // The backend the loaded model runs on, as the engine names it ("cpu", "cuda"); empty when no
  // model is loaded.
  const QString& modelBackend() const { return modelBackend_; }
  // The device's name where the backend has one (the GPU for CUDA), else empty.
  const QString& modelBackendDevice() const { return modelBackendDevice_; }

 signals:
  void stateChanged(peregrine::app::EngineClient::State state);
  void modelLoading(const QString& path);
  void modelLoaded(const peregrine::app::ModelSummary& info);
  void modelLoadFailed(const QString& path, const QString& message);
  void modelLoadCancelled(const QString& path);
  // Weight bytes placed in backend memory so far, of totalBytes (at most ~10 per second; the
  // last one of a load that succeeds has doneBytes == totalBytes).
  void modelLoadProgress(const QString& path, quint64 doneBytes, quint64 totalBytes);
  void modelUnloaded();
  // Coalesced text of the model's thinking (inside its think block; tags removed by the engine).
  void thinkingText(quint64 generationId, const QString& piece);
  // Coalesced visible answer text.
  void answerText(quint64 generationId, const QString& piece);
  // The numbers so far (stop_reason empty), at most once per batch of engine events.
  void progress(quint64 generationId, const peregrine::GenerationStats& stats);
  // The final numbers; stats.stop_reason says why it ended (Cancelled after stop()).
  void finished(quint64 generationId, const peregrine::GenerationStats& stats);
  // The generation failed (no model, prompt too long, bad sampling values, ...); no finished follows.
  void error(quint64 generationId, const QString& message);

 private:
  enum class Kind { Load, Unload, Generate };
  struct Pending {
    Kind kind = Kind::Generate;
    QString path;  // Load
  };
  enum class TextPart { Thinking, Answer };
  struct Inbox;

  void post(const peregrine::Event& event);  // engine thread
  void drain();                              // GUI thread
  void handle(const peregrine::Event& event);
  void bufferText(quint64 id, TextPart part, const std::string& text);
  void flushText();
  void flushStats();
  void scheduleTextFlush();
  void closeRequest(quint64 id);
  void updateState();
  quint64 track(quint64 id, Pending pending);

  Options options_;
  std::shared_ptr<Inbox> inbox_;
  std::map<quint64, Pending> pending_;
  std::optional<ModelSummary> model_;
  QString modelBackend_;
  QString modelBackendDevice_;
  State state_ = State::NoModel;

  quint64 bufferedId_ = 0;
  QString bufferedThinking_;
  QString bufferedAnswer_;
  QElapsedTimer sinceTextEmit_;
  QTimer textTimer_;
  std::optional<std::pair<quint64, peregrine::GenerationStats>> latestStats_;

  // Last member: destroyed first, so the engine thread is joined before anything it reaches.
  std::unique_ptr<peregrine::Engine> engine_;
};

}  // namespace peregrine::app

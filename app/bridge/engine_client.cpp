#include "bridge/engine_client.h"

#include <deque>
#include <mutex>
#include <utility>

#include <QThread>

#include "peregrine/log.h"

namespace peregrine::app {

// Events travel from the engine thread to the GUI thread through here. wakePosted makes sure at
// most one drain() is queued at a time, however fast tokens arrive.
struct EngineClient::Inbox {
  std::mutex mutex;
  std::deque<peregrine::Event> events;
  bool wakePosted = false;
};

EngineClient::EngineClient(QObject* parent) : EngineClient(Options{}, parent) {}

EngineClient::EngineClient(Options options, QObject* parent)
    : QObject(parent), options_(options), inbox_(std::make_shared<Inbox>()) {
  registerBridgeMetaTypes();
  qRegisterMetaType<EngineClient::State>("peregrine::app::EngineClient::State");
  textTimer_.setSingleShot(true);
  connect(&textTimer_, &QTimer::timeout, this, &EngineClient::flushText);
  sinceTextEmit_.start();
  engine_ = std::make_unique<peregrine::Engine>([this](const peregrine::Event& event) { post(event); });
}

EngineClient::~EngineClient() {
  // Cancels the running generation and joins the engine thread; drain() calls still queued are
  // discarded by ~QObject together with this object's posted events.
  engine_.reset();
}

peregrine::ModelOptions EngineClient::recommendedModelOptions() {
  peregrine::ModelOptions options;
  options.n_threads = std::max(1, QThread::idealThreadCount());
  options.context_length = 8192;
  // The fast CPU path (8-bit activations, as llama.cpp's CPU backend); the float path is for tests.
  options.activations = peregrine::ActivationMode::Quantized8;
  return options;
}

quint64 EngineClient::track(quint64 id, Pending pending) {
  pending_.emplace(id, std::move(pending));
  updateState();
  return id;
}

quint64 EngineClient::loadModel(const QString& path, const peregrine::ModelOptions& options) {
  const quint64 id = engine_->load_model(path.toStdString(), options);
  Pending pending;
  pending.kind = Kind::Load;
  pending.path = path;
  track(id, std::move(pending));
  emit modelLoading(path);
  return id;
}

quint64 EngineClient::unloadModel() {
  Pending pending;
  pending.kind = Kind::Unload;
  return track(engine_->unload(), std::move(pending));
}

quint64 EngineClient::generate(const GenerationRequest& request) {
  peregrine::request::Generate g;
  peregrine::ChatPrompt chat;
  chat.messages = request.messages;
  chat.options = request.options;
  chat.options.add_generation_prompt = true;
  chat.format = request.format;
  g.prompt = std::move(chat);
  g.sampling = request.sampling;
  g.max_tokens = request.maxTokens;
  g.stop_strings = request.stopStrings;
  g.ignore_eos = request.ignoreEos;
  g.stats_interval = request.statsInterval;
  g.mtp = request.mtp;
  Pending pending;
  pending.kind = Kind::Generate;
  return track(engine_->generate(std::move(g)), std::move(pending));
}

void EngineClient::stop(quint64 generationId) {
  if (generationId != 0) engine_->cancel(generationId);
}

void EngineClient::stopAll() { engine_->cancel(0); }

void EngineClient::cancelLoads() {
  for (const auto& [id, pending] : pending_)
    if (pending.kind == Kind::Load) engine_->cancel(id);
}

void EngineClient::post(const peregrine::Event& event) {
  bool wake = false;
  {
    std::lock_guard lock(inbox_->mutex);
    inbox_->events.push_back(event);
    wake = !std::exchange(inbox_->wakePosted, true);
  }
  if (wake) QMetaObject::invokeMethod(this, [this] { drain(); }, Qt::QueuedConnection);
}

void EngineClient::drain() {
  std::deque<peregrine::Event> events;
  {
    std::lock_guard lock(inbox_->mutex);
    events.swap(inbox_->events);
    inbox_->wakePosted = false;
  }
  for (const auto& event : events) handle(event);
  flushStats();
  scheduleTextFlush();
}

void EngineClient::handle(const peregrine::Event& event) {
  const quint64 id = event.request;
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    peregrine::log::get("app")->warn("engine event for unknown request {}", id);
    return;
  }
  Pending& pending = it->second;

  if (const auto* text = event.get_if<peregrine::event::TokenText>()) {
    // One event carries thinking or answer text (or only token ids), never both.
    bufferText(id, TextPart::Thinking, text->thinking);
    bufferText(id, TextPart::Answer, text->text);
  } else if (const auto* step = event.get_if<peregrine::event::StepStats>()) {
    latestStats_ = std::make_pair(id, step->stats);  // only the newest is worth showing
  } else if (const auto* done = event.get_if<peregrine::event::Done>()) {
    flushText();
    flushStats();
    const peregrine::GenerationStats closing = done->stats;
    closeRequest(id);
    emit finished(id, closing);
  } else if (const auto* progress = event.get_if<peregrine::event::LoadProgress>()) {
    emit modelLoadProgress(pending.path, progress->done_bytes, progress->total_bytes);
  } else if (const auto* loaded = event.get_if<peregrine::event::ModelLoaded>()) {
    model_ = ModelSummary::fromEngine(loaded->info);
    modelBackend_ = QString::fromStdString(loaded->info.backend);
    modelBackendDevice_ = QString::fromStdString(loaded->info.backend_device);
    closeRequest(id);
    emit modelLoaded(*model_);
  } else if (event.is<peregrine::event::Unloaded>()) {
    model_.reset();
    modelBackend_.clear();
    modelBackendDevice_.clear();
    closeRequest(id);
    emit modelUnloaded();
  } else if (const auto* failure = event.get_if<peregrine::event::Error>()) {
    const QString message = QString::fromStdString(failure->message);
    const Pending closed = std::move(pending);
    if (closed.kind == Kind::Generate) {
      flushText();
      flushStats();
    }
    if (closed.kind == Kind::Load) {
      // The engine freed the old model before loading, also when the load was cancelled.
      model_.reset();
      modelBackend_.clear();
      modelBackendDevice_.clear();
    }
    closeRequest(id);
    if (closed.kind == Kind::Load && failure->cancelled) {
      emit modelLoadCancelled(closed.path);
    } else if (closed.kind == Kind::Load) {
      emit modelLoadFailed(closed.path, message);
    } else {
      emit error(id, message);
    }
  }
}

void EngineClient::bufferText(quint64 id, TextPart part, const std::string& text) {
  if (text.empty()) return;
  // One buffer holds one generation's text in stream order: thinking, then answer. Anything that
  // would not keep that order (another generation, thinking after answer) flushes first.
  if (bufferedId_ != id || (part == TextPart::Thinking && !bufferedAnswer_.isEmpty())) flushText();
  bufferedId_ = id;
  (part == TextPart::Thinking ? bufferedThinking_ : bufferedAnswer_) += QString::fromStdString(text);
}

void EngineClient::flushText() {
  textTimer_.stop();
  if (bufferedThinking_.isEmpty() && bufferedAnswer_.isEmpty()) return;
  const quint64 id = bufferedId_;
  const QString thinking = std::exchange(bufferedThinking_, QString());
  const QString answer = std::exchange(bufferedAnswer_, QString());
  sinceTextEmit_.restart();
  if (!thinking.isEmpty()) emit thinkingText(id, thinking);
  if (!answer.isEmpty()) emit answerText(id, answer);
}

void EngineClient::flushStats() {
  if (!latestStats_) return;
  const auto [id, stats] = *std::exchange(latestStats_, std::nullopt);
  emit progress(id, stats);
}

void EngineClient::scheduleTextFlush() {
  if (bufferedThinking_.isEmpty() && bufferedAnswer_.isEmpty()) return;
  const qint64 interval = options_.minTextInterval.count();
  const qint64 elapsed = sinceTextEmit_.elapsed();
  if (elapsed >= interval) {
    flushText();
  } else if (!textTimer_.isActive()) {
    textTimer_.start(int(interval - elapsed));
  }
}

void EngineClient::closeRequest(quint64 id) {
  pending_.erase(id);
  updateState();
}

void EngineClient::updateState() {
  bool loading = false, generating = false;
  for (const auto& [id, pending] : pending_) {
    loading |= pending.kind == Kind::Load;
    generating |= pending.kind == Kind::Generate;
  }
  State next = model_ ? State::Ready : State::NoModel;
  if (generating) next = State::Generating;
  if (loading) next = State::Loading;
  if (next == state_) return;
  state_ = next;
  emit stateChanged(state_);
}

}  // namespace peregrine::app

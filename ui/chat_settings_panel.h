// The per-chat settings panel (a dock beside the chat): system prompt, Thinking, a sampling
// preset with its five values, the answer's token limit and MTP speculative decoding.
//
// A form only: setSettings() shows a conversation's ChatSettings, and every edit by the user
// emits settingsEdited() with the whole new value (the controller in app/ stores it). Choosing a
// preset fills the values; editing a value switches the preset to "Custom". With no preset
// ("Model card") the values shown are the model card's profile for the Thinking mode, given by
// setModelCardSampling().
#pragma once

#include <QWidget>

#include "core/chat_settings.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QPlainTextEdit;
class QSpinBox;

namespace peregrine::ui {

class ChatSettingsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit ChatSettingsPanel(QWidget* parent = nullptr);

  void setSettings(const app::ChatSettings& settings);
  const app::ChatSettings& settings() const { return settings_; }
  // The values shown while no preset is chosen, for Thinking on and off.
  void setModelCardSampling(const app::SamplingValues& thinking, const app::SamplingValues& instruct);
  // The token limit shown while the chat has none of its own.
  void setDefaultMaxTokens(int maxTokens);

  // The editors, for the tests and for keyboard focus.
  QPlainTextEdit* systemPromptEdit() const { return systemPrompt_; }
  QCheckBox* thinkingBox() const { return thinking_; }
  QComboBox* presetBox() const { return preset_; }
  QDoubleSpinBox* temperatureBox() const { return temperature_; }
  QDoubleSpinBox* topPBox() const { return topP_; }
  QSpinBox* topKBox() const { return topK_; }
  QDoubleSpinBox* minPBox() const { return minP_; }
  QDoubleSpinBox* presencePenaltyBox() const { return presence_; }
  QSpinBox* maxTokensBox() const { return maxTokens_; }
  QComboBox* mtpBox() const { return mtp_; }

 signals:
  void settingsEdited(const peregrine::app::ChatSettings& settings);

 private:
  void showSettings();
  void showSampling(const app::SamplingValues& values);
  void edited();
  void presetChosen();
  void samplingEdited();
  app::SamplingValues samplingShown() const;

  app::ChatSettings settings_;
  app::SamplingValues modelCardThinking_;
  app::SamplingValues modelCardInstruct_;
  int defaultMaxTokens_ = 2048;
  bool updating_ = false;  // showing values: the editors' change signals are not edits

  QPlainTextEdit* systemPrompt_;
  QCheckBox* thinking_;
  QComboBox* preset_;
  QDoubleSpinBox* temperature_;
  QDoubleSpinBox* topP_;
  QSpinBox* topK_;
  QDoubleSpinBox* minP_;
  QDoubleSpinBox* presence_;
  QSpinBox* maxTokens_;
  QComboBox* mtp_;
};

}  // namespace peregrine::ui

Q_DECLARE_METATYPE(peregrine::app::ChatSettings)

#include "ui/chat_settings_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QVBoxLayout>

#include "peregrine/mtp_limits.h"  // header only: the ui does not link the engine

namespace peregrine::ui {
namespace {

QDoubleSpinBox* spinBox(double min, double max, double step, int decimals, const QString& name) {
  auto* box = new QDoubleSpinBox;
  box->setObjectName(name);
  box->setRange(min, max);
  box->setSingleStep(step);
  box->setDecimals(decimals);
  return box;
}

}  // namespace

ChatSettingsPanel::ChatSettingsPanel(QWidget* parent)
    : QWidget(parent),
      systemPrompt_(new QPlainTextEdit),
      thinking_(new QCheckBox(tr("Think before answering"))),
      preset_(new QComboBox),
      temperature_(spinBox(0.0, 2.0, 0.05, 2, QStringLiteral("temperatureBox"))),
      topP_(spinBox(0.01, 1.0, 0.05, 2, QStringLiteral("topPBox"))),
      topK_(new QSpinBox),
      minP_(spinBox(0.0, 1.0, 0.01, 2, QStringLiteral("minPBox"))),
      presence_(spinBox(0.0, 2.0, 0.1, 2, QStringLiteral("presencePenaltyBox"))),
      maxTokens_(new QSpinBox),
      mtp_(new QComboBox) {
  qRegisterMetaType<app::ChatSettings>("peregrine::app::ChatSettings");
  setObjectName(QStringLiteral("chatSettingsPanel"));
  systemPrompt_->setObjectName(QStringLiteral("systemPromptEdit"));
  systemPrompt_->setPlaceholderText(tr("Instructions for every answer in this chat (optional)"));
  systemPrompt_->setTabChangesFocus(true);
  thinking_->setObjectName(QStringLiteral("thinkingBox"));
  preset_->setObjectName(QStringLiteral("presetBox"));
  preset_->addItem(tr("Model card"), QString());
  preset_->addItem(tr("Precise"), QLatin1String(app::ChatSettings::kPrecise));
  preset_->addItem(tr("Creative"), QLatin1String(app::ChatSettings::kCreative));
  preset_->addItem(tr("Coding"), QLatin1String(app::ChatSettings::kCoding));
  preset_->addItem(tr("Custom"), QLatin1String(app::ChatSettings::kCustom));
  preset_->setToolTip(tr("Model card: the sampling the model's authors recommend for the Thinking mode"));
  topK_->setObjectName(QStringLiteral("topKBox"));
  topK_->setRange(0, 1000);
  topK_->setSpecialValueText(tr("off"));
  temperature_->setToolTip(tr("0: always the most likely token"));
  maxTokens_->setObjectName(QStringLiteral("maxTokensBox"));
  maxTokens_->setRange(16, 262144);
  maxTokens_->setSingleStep(256);
  mtp_->setObjectName(QStringLiteral("mtpBox"));
  mtp_->addItem(tr("Auto"), QStringLiteral("auto"));
  mtp_->addItem(tr("Off"), QStringLiteral("off"));
  for (int k = 1; k <= kMaxMtpDraftLength; ++k)
    mtp_->addItem(tr("On, %n draft token(s)", nullptr, k), QString::number(k));
  mtp_->setToolTip(tr("Multi-token prediction: drafts tokens with the model's MTP head (faster, same answers)"));

  auto* form = new QFormLayout;
  form->addRow(tr("Preset"), preset_);
  form->addRow(tr("Temperature"), temperature_);
  form->addRow(tr("Top-p"), topP_);
  form->addRow(tr("Top-k"), topK_);
  form->addRow(tr("Min-p"), minP_);
  form->addRow(tr("Presence penalty"), presence_);
  form->addRow(tr("Max tokens"), maxTokens_);
  form->addRow(tr("MTP"), mtp_);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(new QLabel(tr("System prompt")));
  layout->addWidget(systemPrompt_, 1);
  layout->addWidget(thinking_);
  layout->addLayout(form);
  layout->addStretch();

  connect(systemPrompt_, &QPlainTextEdit::textChanged, this, &ChatSettingsPanel::edited);
  connect(thinking_, &QCheckBox::toggled, this, &ChatSettingsPanel::edited);
  connect(preset_, QOverload<int>::of(&QComboBox::activated), this, &ChatSettingsPanel::presetChosen);
  for (QDoubleSpinBox* box : {temperature_, topP_, minP_, presence_})
    connect(box, QOverload<double>::of(&QDoubleSpinBox::valueChanged), this, &ChatSettingsPanel::samplingEdited);
  connect(topK_, QOverload<int>::of(&QSpinBox::valueChanged), this, &ChatSettingsPanel::samplingEdited);
  connect(maxTokens_, QOverload<int>::of(&QSpinBox::valueChanged), this, &ChatSettingsPanel::edited);
  connect(mtp_, QOverload<int>::of(&QComboBox::activated), this, &ChatSettingsPanel::edited);
  showSettings();
}

void ChatSettingsPanel::setSettings(const app::ChatSettings& settings) {
  settings_ = settings;
  showSettings();
}

void ChatSettingsPanel::setModelCardSampling(const app::SamplingValues& thinking, const app::SamplingValues& instruct) {
  modelCardThinking_ = thinking;
  modelCardInstruct_ = instruct;
  showSettings();
}

void ChatSettingsPanel::setDefaultMaxTokens(int maxTokens) {
  defaultMaxTokens_ = maxTokens;
  showSettings();
}

void ChatSettingsPanel::showSettings() {
  updating_ = true;
  if (systemPrompt_->toPlainText() != settings_.systemPrompt) systemPrompt_->setPlainText(settings_.systemPrompt);
  thinking_->setChecked(settings_.thinking);
  const int presetRow = preset_->findData(settings_.preset);
  preset_->setCurrentIndex(presetRow < 0 ? preset_->findData(QLatin1String(app::ChatSettings::kCustom)) : presetRow);
  showSampling(settings_.usesModelCardSampling() ? (settings_.thinking ? modelCardThinking_ : modelCardInstruct_)
                                                 : settings_.sampling);
  maxTokens_->setValue(settings_.maxTokens.value_or(defaultMaxTokens_));
  const int mtpRow = mtp_->findData(settings_.mtp);
  mtp_->setCurrentIndex(mtpRow < 0 ? 0 : mtpRow);
  updating_ = false;
}

void ChatSettingsPanel::showSampling(const app::SamplingValues& values) {
  temperature_->setValue(values.temperature);
  topP_->setValue(values.topP);
  topK_->setValue(values.topK);
  minP_->setValue(values.minP);
  presence_->setValue(values.presencePenalty);
}

app::SamplingValues ChatSettingsPanel::samplingShown() const {
  return {temperature_->value(), topP_->value(), topK_->value(), minP_->value(), presence_->value()};
}

void ChatSettingsPanel::presetChosen() {
  if (updating_) return;
  const QString name = preset_->currentData().toString();
  if (name == QLatin1String(app::ChatSettings::kCustom)) {
    settings_.setCustomSampling(samplingShown());  // start from what is on screen
  } else {
    settings_.applyPreset(name);
  }
  showSettings();
  emit settingsEdited(settings_);
}

void ChatSettingsPanel::samplingEdited() {
  if (updating_) return;
  settings_.setCustomSampling(samplingShown());
  updating_ = true;
  preset_->setCurrentIndex(preset_->findData(QLatin1String(app::ChatSettings::kCustom)));
  updating_ = false;
  emit settingsEdited(settings_);
}

void ChatSettingsPanel::edited() {
  if (updating_) return;
  settings_.systemPrompt = systemPrompt_->toPlainText();
  const bool thinkingChanged = settings_.thinking != thinking_->isChecked();
  settings_.thinking = thinking_->isChecked();
  const int maxTokens = maxTokens_->value();
  if (settings_.maxTokens || maxTokens != defaultMaxTokens_) settings_.maxTokens = maxTokens;
  settings_.mtp = mtp_->currentData().toString();
  // The model card's values depend on the mode.
  if (thinkingChanged && settings_.usesModelCardSampling()) showSettings();
  emit settingsEdited(settings_);
}

}  // namespace peregrine::ui

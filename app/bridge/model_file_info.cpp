#include "bridge/model_file_info.h"

#include <exception>
#include <map>

#include <QFileInfo>
#include <QStringList>

#include "peregrine/gguf.h"
#include "peregrine/model_config.h"
#include "peregrine/tensor_type.h"

namespace peregrine::app {
namespace {

QString fromStd(std::string_view text) { return QString::fromUtf8(text.data(), int(text.size())); }

// The type holding most weight elements among the 2-D tensors: what a file without
// general.file_type effectively is.
QString dominantWeightType(const peregrine::GgufFile& file) {
  std::map<uint32_t, int64_t> elements;
  for (const auto& tensor : file.tensors()) {
    if (tensor.ne.size() >= 2) elements[static_cast<uint32_t>(tensor.type)] += tensor.n_elements;
  }
  uint32_t best = 0;
  int64_t bestCount = -1;
  for (const auto& [type, count] : elements) {
    if (count > bestCount) best = type, bestCount = count;
  }
  if (bestCount < 0) return {};
  const auto info = peregrine::tensor_type_info(best);
  return info ? fromStd(info->name).toUpper() : QString();
}

QString describeProblems(const std::vector<peregrine::TensorProblem>& problems) {
  constexpr size_t kShown = 3;
  QStringList parts;
  for (size_t i = 0; i < problems.size() && i < kShown; ++i) {
    parts << fromStd(problems[i].tensor) + QStringLiteral(": ") + fromStd(problems[i].what);
  }
  QString text = QStringLiteral("tensor check failed: ") + parts.join(QStringLiteral("; "));
  if (problems.size() > kShown) text += QStringLiteral(" (and %1 more)").arg(problems.size() - kShown);
  return text;
}

}  // namespace

QString fileTypeName(quint32 fileType) {
  // llama.cpp's llama_ftype values (the GGUF key general.file_type).
  static const std::map<quint32, const char*> names = {
      {0, "F32"},     {1, "F16"},      {2, "Q4_0"},     {3, "Q4_1"},    {7, "Q8_0"},    {8, "Q5_0"},
      {9, "Q5_1"},    {10, "Q2_K"},    {11, "Q3_K_S"},  {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
      {15, "Q4_K_M"}, {16, "Q5_K_S"},  {17, "Q5_K_M"},  {18, "Q6_K"},   {19, "IQ2_XXS"}, {20, "IQ2_XS"},
      {21, "Q2_K_S"}, {22, "IQ3_XS"},  {23, "IQ3_XXS"}, {24, "IQ1_S"},  {25, "IQ4_NL"}, {26, "IQ3_S"},
      {27, "IQ3_M"},  {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"}, {31, "IQ1_M"},  {32, "BF16"},
      {36, "TQ1_0"},  {37, "TQ2_0"},   {38, "MXFP4_MOE"},
  };
  const auto it = names.find(fileType);
  return it == names.end() ? QString() : QString::fromLatin1(it->second);
}

ModelFileInfo inspectModelFile(const QString& path) {
  ModelFileInfo info;
  const QFileInfo file(path);
  info.path = file.absoluteFilePath();
  info.fileName = file.fileName();
  info.sizeBytes = file.exists() ? quint64(file.size()) : 0;
  try {
    const peregrine::GgufFile gguf = peregrine::GgufFile::open(path.toStdString());
    if (const auto* value = gguf.find("general.name"); value && value->as_string()) {
      info.name = QString::fromStdString(*value->as_string());
    }
    if (const auto* value = gguf.find("general.architecture"); value && value->as_string()) {
      info.architecture = QString::fromStdString(*value->as_string());
    }
    if (const auto* value = gguf.find("general.file_type"); value && value->as_u64()) {
      info.quantType = fileTypeName(quint32(*value->as_u64()));
    }
    if (info.quantType.isEmpty()) info.quantType = dominantWeightType(gguf);
    for (const auto& tensor : gguf.tensors()) info.parameters += tensor.n_elements;

    const peregrine::ModelConfig config = peregrine::ModelConfig::from_gguf(gguf);
    info.architecture = fromStd(config.arch_name);
    info.hasMtp = config.has_mtp();
    info.isMoe = config.is_moe();
    info.layers = config.n_layer;
    info.trainedContextLength = config.context_length;
    const auto problems = peregrine::check_tensors(config, gguf);
    if (!problems.empty()) {
      info.error = describeProblems(problems);
      return info;
    }
    info.valid = true;
  } catch (const std::exception& e) {
    info.error = QString::fromStdString(e.what());
  }
  return info;
}

}  // namespace peregrine::app

// What the model menu knows about one local model file, read from its GGUF header only
// (metadata and tensor table, no weights): a few milliseconds even for a 20 GB file.
#pragma once

#include <QString>

namespace peregrine::app {

struct ModelFileInfo {
  QString path;
  QString fileName;
  quint64 sizeBytes = 0;
  QString name;          // general.name (may be empty)
  QString architecture;  // "qwen35" / "qwen35moe"; empty when the header could not be read
  QString quantType;     // "Q4_K_M", "F32", ... (general.file_type, else the dominant weight type)
  bool hasMtp = false;
  bool isMoe = false;
  qint64 layers = 0;
  qint64 trainedContextLength = 0;
  qint64 parameters = 0;  // elements of every tensor
  bool valid = false;     // the engine can load it: header, config and every tensor check out
  QString error;          // why not (first problems, joined), empty when valid
};

// Never throws: an unreadable, corrupt or unsupported file comes back with valid = false and
// the reason in error.
ModelFileInfo inspectModelFile(const QString& path);

// llama.cpp's name of a general.file_type value ("Q4_K_M" for 15); empty for unknown values.
QString fileTypeName(quint32 fileType);

}  // namespace peregrine::app

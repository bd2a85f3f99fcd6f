// Tokenizer throughput on the reference corpus (tests/data/tokenizer-qwen3): encode and decode
// MB/s (bytes of UTF-8 text per second), and the load time of the 11 MB tokenizer.json.
#include <benchmark/benchmark.h>

#include "peregrine/tokenizer.h"
#include "test_tokenizer_corpus.h"

namespace {

using peregrine::EncodeOptions;
using peregrine::Tokenizer;

const Tokenizer& qwen3() {
  static const Tokenizer tokenizer = Tokenizer::from_hf_json(peregrine::test::tokenizer_data_dir() + "/tokenizer.json");
  return tokenizer;
}

const std::vector<peregrine::test::CorpusLine>& corpus() {
  static const auto lines = peregrine::test::read_corpus();
  return lines;
}

size_t corpus_bytes() {
  size_t bytes = 0;
  for (const auto& line : corpus()) bytes += line.text.size();
  return bytes;
}

void BM_EncodeCorpus(benchmark::State& state) {
  const Tokenizer& t = qwen3();
  size_t tokens = 0;
  for (auto _ : state) {
    for (const auto& line : corpus()) {
      auto ids = t.encode(line.text);
      tokens += ids.size();
      benchmark::DoNotOptimize(ids);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus_bytes()));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EncodeCorpus)->Unit(benchmark::kMillisecond);

void BM_EncodeCorpusNoNfc(benchmark::State& state) {
  const Tokenizer& t = qwen3();
  for (auto _ : state) {
    for (const auto& line : corpus()) benchmark::DoNotOptimize(t.encode(line.text, EncodeOptions().with_nfc(false)));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus_bytes()));
}
BENCHMARK(BM_EncodeCorpusNoNfc)->Unit(benchmark::kMillisecond);

void BM_DecodeCorpus(benchmark::State& state) {
  const Tokenizer& t = qwen3();
  std::vector<std::vector<int32_t>> ids;
  size_t bytes = 0;
  for (const auto& line : corpus()) {
    ids.push_back(t.encode(line.text));
    bytes += t.decode(ids.back()).size();
  }
  for (auto _ : state) {
    for (const auto& one : ids) benchmark::DoNotOptimize(t.decode(one));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_DecodeCorpus)->Unit(benchmark::kMillisecond);

void BM_StreamDecodeCorpus(benchmark::State& state) {
  const Tokenizer& t = qwen3();
  std::vector<std::vector<int32_t>> ids;
  size_t bytes = 0;
  for (const auto& line : corpus()) {
    ids.push_back(t.encode(line.text));
    bytes += t.decode(ids.back()).size();
  }
  for (auto _ : state) {
    for (const auto& one : ids) {
      peregrine::StreamingDecoder stream(t);
      for (int32_t id : one) benchmark::DoNotOptimize(stream.push(id));
      benchmark::DoNotOptimize(stream.flush());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_StreamDecodeCorpus)->Unit(benchmark::kMillisecond);

void BM_LoadTokenizerJson(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(Tokenizer::from_hf_json(peregrine::test::tokenizer_data_dir() + "/tokenizer.json"));
  }
}
BENCHMARK(BM_LoadTokenizerJson)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();

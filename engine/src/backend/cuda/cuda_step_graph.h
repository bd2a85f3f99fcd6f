// One forward step (decode, MTP verify, a draft) recorded as a CUDA graph and replayed.
//
// A 27B decode step is about 1,300 kernel launches; issued one by one the host needs about as
// long to launch them as the GPU needs to run them, so the GPU idles between kernels. Instead
// the step is captured from the stream (recording launches is cheap), the captured graph is
// applied to an executable graph kept per step shape with cudaGraphExecUpdate (kernel
// arguments such as positions and cache rows change every step, the topology does not), and
// the whole step is submitted with one cudaGraphLaunch. A shape whose topology changed (e.g.
// attention split differently at a longer context) is instantiated anew.
//
// Capture is only correct when nothing inside the step waits for the device or reads results
// on the host: CUDA reports such a call as a capture error. That is a bug in the step, never
// papered over: end_and_launch() throws (the step did not run, the stream is usable again).
#pragma once

#include <cstdint>
#include <map>

typedef struct CUstream_st* cudaStream_t;
typedef struct CUgraphExec_st* cudaGraphExec_t;

namespace peregrine::cuda {

struct StepGraphStats {
  int64_t captures = 0;        // steps recorded
  int64_t instantiations = 0;  // executable graphs built (first time a shape is seen, or topology changed)
  int64_t updates = 0;         // steps applied to an existing executable graph
  int64_t launches = 0;        // graph launches
  int64_t aborted = 0;         // captures discarded (something in the step was not capturable)
};

class StepGraph {
 public:
  explicit StepGraph(cudaStream_t stream) : stream_(stream) {}
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Starts recording the stream's work for a step of shape `shape_key`; returns true.
  bool begin(uint64_t shape_key);
  // Ends recording and launches the step. Throws peregrine::Error when the capture failed
  // (after discarding it: the stream is usable again, the recorded work did not run).
  void end_and_launch();
  // Discards a capture in progress (an exception inside the step); never throws.
  void abort() noexcept;

  bool capturing() const { return capturing_; }
  const StepGraphStats& stats() const { return stats_; }

 private:
  cudaStream_t stream_;
  bool capturing_ = false;
  uint64_t shape_ = 0;
  std::map<uint64_t, cudaGraphExec_t> execs_;
  StepGraphStats stats_;
};

}  // namespace peregrine::cuda

// The CUDA emulator's streams, events and graphs.
//
// Event timing is the host clock at the moment the queue ran the record operation, so elapsed
// times measure the emulator, not a GPU. Graph capture records operations instead of queueing
// them; a launched graph queues copies of them (kernel arguments as captured, so a replay reads
// whatever the device buffers hold by then).
#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "cuda_emulator.h"

using namespace peregrine::cuda_emulation;  // NOLINT: the API below is CUDA's, at global scope

namespace {

bool known_event(cudaEvent_t e) { return e && state().events.count(e) > 0; }

// Runs the event's stream up to its record operation.
cudaError_t complete(cudaEvent_t event, const char* call) {
  if (!known_event(event)) return fail(cudaErrorInvalidResourceHandle, cat_text(call, ": unknown event"));
  if (event->captured)
    return fail(cudaErrorCapturedEvent, cat_text(call, " on an event recorded while its stream captured a graph"));
  if (!event->recorded) return cudaSuccess;  // as CUDA: an event never recorded counts as complete
  if (any_capture_forbids_sync()) return refuse_during_capture(call);
  return flush(event->stream, event->sequence);
}

}  // namespace

// ---- streams ----

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  std::lock_guard lock(api_mutex());
  auto* s = new CUstream_st();
  s->flags = flags;
  state().streams.insert(s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  std::lock_guard lock(api_mutex());
  if (!stream || !state().streams.count(stream)) return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy of an unknown stream");
  // CUDA lets queued work finish after the call; running it now is the same to the host.
  const cudaError_t e = stream->capture == cudaStreamCaptureStatusNone ? flush(stream, stream->issued) : cudaSuccess;
  for (CUevent_st* ev : state().events)
    if (ev->stream == stream) ev->recorded = false;
  delete stream->graph;
  state().streams.erase(stream);
  delete stream;
  return e;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  std::lock_guard lock(api_mutex());
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize of an unknown stream");
  CUstream_st* s = stream_of(stream);
  if (s->capture != cudaStreamCaptureStatusNone || any_capture_forbids_sync())
    return refuse_during_capture("cudaStreamSynchronize");
  return stream == nullptr || stream == cudaStreamLegacy ? flush_legacy() : flush(s, s->issued);
}

cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  std::lock_guard lock(api_mutex());
  if (!known_stream(stream) || !known_event(event)) return record(cudaErrorInvalidResourceHandle);
  if (!event->recorded || event->captured) return cudaSuccess;
  CUstream_st* other = event->stream;
  const uint64_t until = event->sequence;
  Operation op;
  op.kind = Operation::Kind::Wait;
  op.what = "cudaStreamWaitEvent";
  op.run = [other, until] {
    if (!state().streams.count(other) && other != &state().legacy) return;
    if (flush(other, until) != cudaSuccess) throw std::runtime_error("the awaited stream failed");
  };
  return submit(stream, std::move(op));
}

// ---- events ----

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  std::lock_guard lock(api_mutex());
  auto* e = new CUevent_st();
  e->flags = flags;
  state().events.insert(e);
  *event = e;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  std::lock_guard lock(api_mutex());
  if (!known_event(event)) return fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy of an unknown event");
  state().events.erase(event);  // a queued record of it finds it gone and does nothing
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  std::lock_guard lock(api_mutex());
  if (!known_event(event) || !known_stream(stream)) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord");
  CUstream_st* s = stream_of(stream);
  if (s->capture == cudaStreamCaptureStatusActive) {
    // Inside a capture the record orders work within the graph; the host cannot wait for it.
    event->captured = true;
    return cudaSuccess;
  }
  Operation op;
  op.kind = Operation::Kind::EventRecord;
  op.what = "cudaEventRecord";
  op.run = [event] {
    if (!state().events.count(event)) return;
    event->when = std::chrono::steady_clock::now();
    event->timed = true;
  };
  const cudaError_t e = submit(stream, std::move(op));
  if (e != cudaSuccess) return e;
  event->stream = s;
  event->sequence = s->issued;
  event->recorded = true;
  event->captured = false;
  event->timed = false;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  std::lock_guard lock(api_mutex());
  return complete(event, "cudaEventSynchronize");
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  std::lock_guard lock(api_mutex());
  return complete(event, "cudaEventQuery");
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  std::lock_guard lock(api_mutex());
  if (!known_event(start) || !known_event(end)) return record(cudaErrorInvalidResourceHandle);
  if ((start->flags | end->flags) & cudaEventDisableTiming)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime of an event created with cudaEventDisableTiming");
  if (!start->recorded || !end->recorded) return record(cudaErrorInvalidResourceHandle);
  if (!start->timed || !end->timed) return record(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

// ---- graphs ----

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  std::lock_guard lock(api_mutex());
  if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
    return fail(cudaErrorStreamCaptureUnsupported, "capture on the legacy default stream");
  if (!known_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  if (stream->capture != cudaStreamCaptureStatusNone)
    return fail(cudaErrorIllegalState, "cudaStreamBeginCapture on a stream that already captures");
  stream->capture = cudaStreamCaptureStatusActive;
  stream->capture_mode = mode;
  stream->capture_thread = std::this_thread::get_id();
  stream->graph = new CUgraph_st();
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  std::lock_guard lock(api_mutex());
  *graph = nullptr;
  if (!known_stream(stream) || stream_of(stream)->capture == cudaStreamCaptureStatusNone)
    return fail(cudaErrorIllegalState, "cudaStreamEndCapture on a stream that does not capture");
  CUstream_st* s = stream_of(stream);
  CUgraph_st* g = s->graph;
  const bool invalidated = s->capture == cudaStreamCaptureStatusInvalidated;
  s->graph = nullptr;
  s->capture = cudaStreamCaptureStatusNone;
  if (invalidated) {
    delete g;
    return fail(cudaErrorStreamCaptureInvalidated, "the capture was invalidated by an operation not allowed in it");
  }
  *graph = g;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  std::lock_guard lock(api_mutex());
  if (!known_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  *status = stream_of(stream)->capture;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  std::lock_guard lock(api_mutex());
  if (!graph) return record(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->ops};
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags) {
  return cudaGraphInstantiate(exec, graph, flags);
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  std::lock_guard lock(api_mutex());
  if (!exec || !known_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  for (const Operation& op : exec->ops) {
    const cudaError_t e = submit(stream, op);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

// Same topology (operation kinds, kernels, launch shapes) → the executable takes the new
// parameters; anything else fails, as CUDA's update does.
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t graph, cudaGraphExecUpdateResultInfo* info) {
  std::lock_guard lock(api_mutex());
  if (!exec || !graph) return record(cudaErrorInvalidValue);
  cudaGraphExecUpdateResult result = cudaGraphExecUpdateSuccess;
  if (exec->ops.size() != graph->ops.size()) {
    result = cudaGraphExecUpdateErrorTopologyChanged;
  } else {
    for (size_t i = 0; i < exec->ops.size() && result == cudaGraphExecUpdateSuccess; ++i) {
      const Operation &a = exec->ops[i], &b = graph->ops[i];
      if (a.kind != b.kind) result = cudaGraphExecUpdateErrorNodeTypeChanged;
      else if (a.kernel != b.kernel) result = cudaGraphExecUpdateErrorParametersChanged;
    }
  }
  if (info) *info = {result, nullptr, nullptr};
  if (result != cudaGraphExecUpdateSuccess)
    return fail(cudaErrorGraphExecUpdateFailure, "the new graph's operations differ from the executable's");
  exec->ops = graph->ops;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  std::lock_guard lock(api_mutex());
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  std::lock_guard lock(api_mutex());
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* count) {
  std::lock_guard lock(api_mutex());
  if (!graph || !count) return record(cudaErrorInvalidValue);
  if (nodes) return fail(cudaErrorNotSupported, "cudaGraphGetNodes returns only the node count");
  *count = graph->ops.size();
  return cudaSuccess;
}

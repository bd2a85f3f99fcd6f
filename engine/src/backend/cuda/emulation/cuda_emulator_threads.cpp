// The CUDA emulator's execution of one kernel launch: blocks run one after another; every CUDA
// thread of a block is a fiber on the calling OS thread. A fiber runs until it reaches a barrier
// (__syncthreads, a warp operation) or exits; the scheduler releases a barrier once every live
// participant has arrived, and reports a deadlock when nothing can run but threads remain.
//
// Fibers start through makecontext/swapcontext once and are then switched with _setjmp/_longjmp,
// which do not save the signal mask (swapcontext makes a system call per switch, and warp
// shuffles switch 64 times each). Stacks are mmap'd once, with a guard page, and reused.
#undef _FORTIFY_SOURCE  // its longjmp check rejects the deliberate jumps between fiber stacks
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_emulator.h"

// Bounds of the static __shared__ variables of every kernel (cuda_emulator_device.h puts them in
// this section; the linker defines the symbols). Weak: a program without any is null here.
extern "C" unsigned char __start_peregrine_shared[] __attribute__((weak, visibility("hidden")));
extern "C" unsigned char __stop_peregrine_shared[] __attribute__((weak, visibility("hidden")));

namespace peregrine::cuda_emulation {

ThreadContext* current_thread = nullptr;

namespace {

constexpr size_t kStackBytes = 256 * 1024;
constexpr int kWarp = 32;

enum class Wait { Running, Block, Warp, Done };

struct Fiber {
  ThreadContext ctx{};
  int index = 0;
  unsigned char* mapping = nullptr;  // guard page, then the stack
  ucontext_t start{};
  jmp_buf resume{};
  bool started = false;  // false: (re)enter through makecontext
  Wait wait = Wait::Done;
  // The warp operation or barrier it waits at.
  WarpOp op = WarpOp::Sync;
  unsigned mask = 0;
  uint64_t value = 0, result = 0;
  int arg = 0, width = kWarp;
  std::source_location where;
};

struct Block {
  const std::function<void()>* body = nullptr;
  int n_threads = 0, live = 0, at_barrier = 0;
  bool reversed = false;  // odd blocks run their threads last to first (see run_block)
  std::vector<int> warp_live, warp_waiting;
  std::deque<int> runnable;
  std::string failure;
};

std::vector<std::unique_ptr<Fiber>> fibers;
Fiber* running = nullptr;
Block* block = nullptr;
jmp_buf scheduler_jump;
ucontext_t scheduler_context;
std::vector<uint4> shared_storage;  // 16-byte aligned, as dynamic shared memory is
unsigned char* shared_base = nullptr;
const char* running_kernel = nullptr;  // for the SIGSEGV note
unsigned launch_parity = 0;            // alternates per launch, so one-block launches vary too

[[noreturn]] void yield_to_scheduler(Fiber* self) {
  _longjmp(scheduler_jump, 1);
  (void)self;
}

void park(Fiber* self) {
  if (_setjmp(self->resume) == 0) yield_to_scheduler(self);
}

void fiber_main() {
  for (;;) {
    Fiber* self = running;
    try {
      (*block->body)();
    } catch (const std::exception& e) {
      if (block->failure.empty()) block->failure = e.what();
    } catch (...) {
      if (block->failure.empty()) block->failure = "a non-standard exception left the kernel";
    }
    self->wait = Wait::Done;
    park(self);  // resumed for the next block or launch
  }
}

Fiber& fiber(int i) {
  while (static_cast<int>(fibers.size()) <= i) {
    auto f = std::make_unique<Fiber>();
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("CUDA emulator: cannot map a thread stack");
    mprotect(m, page, PROT_NONE);  // a stack overflow faults instead of corrupting memory
    f->mapping = static_cast<unsigned char*>(m);
    f->index = static_cast<int>(fibers.size());
    fibers.push_back(std::move(f));
  }
  return *fibers[static_cast<size_t>(i)];
}

void resume(Fiber& f) {
  running = &f;
  current_thread = &f.ctx;
  if (_setjmp(scheduler_jump) == 0) {
    if (!f.started) {
      const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      getcontext(&f.start);
      f.start.uc_stack.ss_sp = f.mapping + page;
      f.start.uc_stack.ss_size = kStackBytes;
      f.start.uc_link = nullptr;
      makecontext(&f.start, fiber_main, 0);
      f.started = true;
      swapcontext(&scheduler_context, &f.start);
    } else {
      _longjmp(f.resume, 1);
    }
  }
  running = nullptr;
  current_thread = nullptr;
}

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::Sync: return "__syncwarp";
    case WarpOp::ShflIdx: return "__shfl_sync";
    case WarpOp::ShflXor: return "__shfl_xor_sync";
    case WarpOp::ShflDown: return "__shfl_down_sync";
    case WarpOp::ShflUp: return "__shfl_up_sync";
    case WarpOp::Ballot: return "__ballot_sync";
  }
  return "?";
}

std::string where_text(const std::source_location& w) {
  std::string file = w.file_name();
  const size_t slash = file.find_last_of('/');
  if (slash != std::string::npos) file = file.substr(slash + 1);
  return file + ":" + std::to_string(w.line());
}

std::string wait_text(const Fiber& f) {
  switch (f.wait) {
    case Wait::Block: return "__syncthreads (" + where_text(f.where) + ")";
    case Wait::Warp: return std::string(op_name(f.op)) + " (" + where_text(f.where) + ")";
    case Wait::Done: return "exited";
    case Wait::Running: return "running";
  }
  return "?";
}

// "threads 0-31 at X; threads 32-63 at Y" over the block's threads.
std::string thread_states(int n) {
  std::ostringstream s;
  int first = 0;
  for (int i = 1; i <= n; ++i) {
    if (i < n && wait_text(*fibers[static_cast<size_t>(i)]) == wait_text(*fibers[static_cast<size_t>(first)])) continue;
    if (first > 0) s << "; ";
    s << "threads " << first;
    if (i - 1 > first) s << "-" << i - 1;
    s << " " << (fibers[static_cast<size_t>(first)]->wait == Wait::Done ? "" : "at ")
      << wait_text(*fibers[static_cast<size_t>(first)]);
    first = i;
  }
  return s.str();
}

void release_block_barrier() {
  if (block->at_barrier == 0 || block->at_barrier != block->live) return;
  for (int k = 0; k < block->n_threads; ++k) {
    const int i = block->reversed ? block->n_threads - 1 - k : k;
    Fiber& f = *fibers[static_cast<size_t>(i)];
    if (f.wait != Wait::Block) continue;
    f.wait = Wait::Running;
    block->runnable.push_back(i);
  }
  block->at_barrier = 0;
}

// Every live lane of warp w waits at a warp operation: check that it is one operation, compute
// what each lane receives, and release them.
void resolve_warp(int w) {
  const int first = w * kWarp, lanes = std::min(kWarp, block->n_threads - first);
  Fiber* lead = nullptr;
  unsigned participants = 0;
  for (int l = 0; l < lanes; ++l) {
    Fiber& f = *fibers[static_cast<size_t>(first + l)];
    if (f.wait != Wait::Warp) continue;
    participants |= 1u << l;
    if (!lead) {
      lead = &f;
      continue;
    }
    if (f.op != lead->op || f.mask != lead->mask || f.width != lead->width)
      throw std::runtime_error("lanes of warp " + std::to_string(w) + " reached different warp operations: lane " +
                               std::to_string(lead->index - first) + " at " + wait_text(*lead) + " (mask " +
                               std::to_string(lead->mask) + "), lane " + std::to_string(l) + " at " + wait_text(f) +
                               " (mask " + std::to_string(f.mask) + ")");
  }
  if ((participants & ~lead->mask) != 0)
    throw std::runtime_error(std::string(op_name(lead->op)) + " at " + where_text(lead->where) +
                             ": a mask that leaves out live lanes of the warp is unsupported by the emulator");
  const int width = lead->width;
  if (width < 1 || width > kWarp || (width & (width - 1)) != 0)
    throw std::runtime_error(std::string(op_name(lead->op)) + " at " + where_text(lead->where) + ": width " +
                             std::to_string(width) + " is not a power of two up to 32");
  uint64_t ballot = 0;
  if (lead->op == WarpOp::Ballot)
    for (int l = 0; l < lanes; ++l)
      if ((participants >> l & 1u) && fibers[static_cast<size_t>(first + l)]->value) ballot |= 1ull << l;
  for (int l = 0; l < lanes; ++l) {
    if (!(participants >> l & 1u)) continue;
    Fiber& f = *fibers[static_cast<size_t>(first + l)];
    const int base = l & ~(width - 1);
    int src = l;
    switch (f.op) {
      case WarpOp::Sync: break;
      case WarpOp::Ballot: f.result = ballot & f.mask; break;
      case WarpOp::ShflIdx: src = base + (f.arg & (width - 1)); break;
      case WarpOp::ShflXor: src = l ^ f.arg; src = src >= base + width ? l : src; break;
      case WarpOp::ShflDown: src = l + f.arg >= base + width ? l : l + f.arg; break;
      case WarpOp::ShflUp: src = l - f.arg < base ? l : l - f.arg; break;
    }
    if (f.op == WarpOp::Sync || f.op == WarpOp::Ballot) continue;
    if (src < 0 || src >= kWarp || !(participants >> src & 1u))
      throw std::runtime_error(std::string(op_name(f.op)) + " at " + where_text(f.where) + ": lane " +
                               std::to_string(l) + " of warp " + std::to_string(w) + " reads lane " +
                               std::to_string(src) +
                               (src >= lanes ? ", which the block does not have" : ", which has exited") +
                               " (the value is undefined on a GPU)");
    f.result = fibers[static_cast<size_t>(first + src)]->value;
  }
  for (int l = 0; l < lanes; ++l) {
    if (!(participants >> l & 1u)) continue;
    fibers[static_cast<size_t>(first + l)]->wait = Wait::Running;
    block->runnable.push_back(first + l);
  }
  block->warp_waiting[static_cast<size_t>(w)] = 0;
}

void release_warp(int w) {
  const size_t i = static_cast<size_t>(w);
  if (block->warp_waiting[i] > 0 && block->warp_waiting[i] == block->warp_live[i]) resolve_warp(w);
}

// Runs one block to completion; throws with the reason when it cannot.
void run_block(const KernelLaunch& launch, uint3 block_idx) {
  const int bx = static_cast<int>(launch.block.x), by = static_cast<int>(launch.block.y);
  Block b;
  b.body = launch.body;
  b.n_threads = static_cast<int>(launch.block.x * launch.block.y * launch.block.z);
  b.live = b.n_threads;
  const int n_warps = (b.n_threads + kWarp - 1) / kWarp;
  b.warp_live.resize(static_cast<size_t>(n_warps));
  b.warp_waiting.assign(static_cast<size_t>(n_warps), 0);
  for (int w = 0; w < n_warps; ++w) b.warp_live[static_cast<size_t>(w)] = std::min(kWarp, b.n_threads - w * kWarp);
  // Threads run until they block, in index order in even blocks and in reverse in odd ones: code
  // that relies on one thread running before another without a barrier between them (a read of
  // shared memory another thread writes) then fails in one of the two orders.
  b.reversed = (block_idx.x + block_idx.y + block_idx.z + launch_parity) % 2 == 1;
  for (int k = 0; k < b.n_threads; ++k) fiber(k);
  for (int k = 0; k < b.n_threads; ++k) {
    const int i = b.reversed ? b.n_threads - 1 - k : k;
    Fiber& f = fiber(i);
    f.ctx.thread_idx = {static_cast<unsigned>(i % bx), static_cast<unsigned>((i / bx) % by),
                        static_cast<unsigned>(i / (bx * by))};
    f.ctx.block_idx = block_idx;
    f.ctx.block_dim = launch.block;
    f.ctx.grid_dim = launch.grid;
    f.wait = Wait::Running;
    b.runnable.push_back(i);
  }
  if (shared_base) std::memset(shared_base, 0xFF, launch.shared_bytes);  // NaN poison for every block
  if (__start_peregrine_shared != nullptr) {  // and the static shared memory of every kernel
    const auto static_bytes = static_cast<size_t>(__stop_peregrine_shared - __start_peregrine_shared);
    std::memset(__start_peregrine_shared, 0xFF, static_bytes);
  }
  block = &b;
  auto abandon = [&](const std::string& why) {
    // Threads stopped mid-kernel start afresh next time; their frames are dropped (kernel locals
    // are trivially destructible).
    for (int i = 0; i < b.n_threads; ++i)
      if (fibers[static_cast<size_t>(i)]->wait != Wait::Done) fibers[static_cast<size_t>(i)]->started = false;
    block = nullptr;
    std::ostringstream s;
    s << "block (" << block_idx.x << "," << block_idx.y << "," << block_idx.z << "): " << why;
    throw std::runtime_error(s.str());
  };
  try {
    while (!b.runnable.empty()) {
      const int i = b.runnable.front();
      b.runnable.pop_front();
      Fiber& f = *fibers[static_cast<size_t>(i)];
      resume(f);
      if (!b.failure.empty()) abandon(b.failure);
      const size_t w = static_cast<size_t>(i / kWarp);
      if (f.wait == Wait::Done) {
        --b.live;
        --b.warp_live[w];
        release_block_barrier();
        release_warp(static_cast<int>(w));
      } else if (f.wait == Wait::Block) {
        ++b.at_barrier;
        release_block_barrier();
      } else if (f.wait == Wait::Warp) {
        ++b.warp_waiting[w];
        release_warp(static_cast<int>(w));
      }
    }
  } catch (const std::runtime_error& e) {
    if (block) abandon(e.what());
    throw;
  }
  if (b.live > 0) abandon("deadlocked: threads waiting at different barriers: " + thread_states(b.n_threads));
  block = nullptr;
}

// A kernel that touches memory outside every allocation (past a buffer's end, freed memory)
// faults on the guard pages; this says which kernel and thread did it before the process dies as
// it would have anyway. Only async-signal-safe calls.
void write_text(const char* text) {
  size_t n = 0;
  while (text[n]) ++n;
  (void)!write(2, text, n);
}

void write_number(unsigned v) {
  char digits[12];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  char out[12];
  for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  out[n] = 0;
  write_text(out);
}

void on_memory_fault(int sig) {
  if (running_kernel && running && current_thread) {
    write_text("CUDA emulator: kernel ");
    write_text(running_kernel);
    write_text(", block (");
    write_number(current_thread->block_idx.x);
    write_text(",");
    write_number(current_thread->block_idx.y);
    write_text(",");
    write_number(current_thread->block_idx.z);
    write_text("), thread (");
    write_number(current_thread->thread_idx.x);
    write_text(",");
    write_number(current_thread->thread_idx.y);
    write_text(",");
    write_number(current_thread->thread_idx.z);
    write_text("): memory access outside every device allocation (out of bounds, or freed)\n");
  }
  signal(sig, SIG_DFL);  // returning re-runs the access, which now ends the process
}

void install_fault_note() {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_handler = on_memory_fault;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    sigaction(SIGSEGV, &action, nullptr);
    sigaction(SIGBUS, &action, nullptr);
    return true;
  }();
  (void)installed;
}

}  // namespace

void* dynamic_shared() { return shared_base; }

void sync_block(const std::source_location& where) {
  Fiber* self = running;
  if (!self) throw std::logic_error("__syncthreads called outside a kernel");
  self->wait = Wait::Block;
  self->where = where;
  park(self);
}

uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const std::source_location& where) {
  Fiber* self = running;
  if (!self) throw std::logic_error(std::string(op_name(op)) + " called outside a kernel");
  if (!(mask >> (self->index % kWarp) & 1u))
    throw std::runtime_error(std::string(op_name(op)) + " at " + where_text(where) + ": the calling lane " +
                             std::to_string(self->index % kWarp) + " is not in its mask");
  self->wait = Wait::Warp;
  self->op = op;
  self->mask = mask;
  self->value = value;
  self->arg = arg;
  self->width = width;
  self->where = where;
  park(self);
  return self->result;
}

void run_kernel(const KernelLaunch& launch) {
  const std::string name = kernel_name(launch.kernel);
  install_fault_note();
  launch_parity ^= 1u;
  if (launch.shared_bytes > shared_storage.size() * sizeof(uint4))
    shared_storage.resize((launch.shared_bytes + sizeof(uint4) - 1) / sizeof(uint4));
  shared_base = launch.shared_bytes ? reinterpret_cast<unsigned char*>(shared_storage.data()) : nullptr;
  running_kernel = name.c_str();
  try {
    for (unsigned z = 0; z < launch.grid.z; ++z)
      for (unsigned y = 0; y < launch.grid.y; ++y)
        for (unsigned x = 0; x < launch.grid.x; ++x) run_block(launch, {x, y, z});
  } catch (...) {
    running_kernel = nullptr;  // the message names the block; the queue names the kernel
    throw;
  }
  running_kernel = nullptr;
}

}  // namespace peregrine::cuda_emulation

// Collecting an Engine's events in tests: wait for the closing event of one request.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "peregrine/engine.h"

namespace peregrine::test {

// The events of one request up to its closing event, with the generated ids and text gathered.
struct Outcome {
  std::vector<Event> events;
  std::vector<int32_t> ids;
  std::string text;      // the answer
  std::string thinking;  // the think block of a chat prompt (tags removed)
  int stats = 0;
  const Event* last() const { return events.empty() ? nullptr : &events.back(); }
  template <class T>
  const T* closing() const { return last() ? last()->get_if<T>() : nullptr; }
  // The final statistics of a Generate (its Done event), else nullptr.
  const GenerationStats* done() const {
    const event::Done* d = closing<event::Done>();
    return d ? &d->stats : nullptr;
  }
  const event::Error* error() const { return closing<event::Error>(); }
};

inline bool closes(const Event& e) {
  return e.is<event::Done>() || e.is<event::Error>() || e.is<event::ModelLoaded>() || e.is<event::Unloaded>() ||
         e.is<event::SnapshotTaken>() || e.is<event::Restored>();
}

// Waits (queue mode) for the closing event of `id`; every event on the way must belong to `id`.
inline Outcome wait_for(Engine& engine, RequestId id, std::chrono::seconds limit = std::chrono::seconds(60)) {
  Outcome out;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    auto e = engine.wait(std::chrono::milliseconds(100));
    if (!e) continue;
    EXPECT_EQ(e->request, id) << "event of another request";
    if (auto* t = e->get_if<event::TokenText>()) {
      out.ids.insert(out.ids.end(), t->ids.begin(), t->ids.end());
      out.text += t->text;
      out.thinking += t->thinking;
    }
    if (e->is<event::StepStats>()) ++out.stats;
    out.events.push_back(std::move(*e));
    if (closes(out.events.back())) return out;
  }
  ADD_FAILURE() << "no closing event for request " << id;
  return out;
}

}  // namespace peregrine::test

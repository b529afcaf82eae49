// Entity lifecycle: every cell of entity_status's transition table, through
// the one transition function, and what the mailbox hands over.
#include "cosched/detail/entity_state.hpp"

#include <memory>
#include <optional>
#include <vector>

#include "catch.hpp"
#include "cosched/error.hpp"
#include "engine/entity_record.hpp"

using namespace cosched;
using namespace cosched::detail;

namespace {

struct release_entity {
  void operator()(entity_state* entity) const noexcept { entity->release(); }
};

std::unique_ptr<entity_state, release_entity> make_entity() {
  return std::unique_ptr<entity_state, release_entity>(
      new entity_record(nullptr, 1, 1, priority::normal, "e", nullptr));
}

struct table_row {
  entity_status from;
  entity_event event;
  std::optional<entity_status> to;  // nullopt: no change
};

const char* name_of(entity_status s) {
  switch (s) {
    case entity_status::open:
      return "open";
    case entity_status::closed:
      return "closed";
    case entity_status::killed:
      return "killed";
    case entity_status::banned:
      return "banned";
    case entity_status::shut_down:
      return "shut_down";
  }
  return "?";
}

}  // namespace

TEST_CASE("entity_status: every transition of the table, and no other", "[engine][entity_state]") {
  using s = entity_status;
  using e = entity_event;
  const std::vector<table_row> table = {
      {s::open, e::close, s::closed}, {s::open, e::kill, s::killed},
      {s::open, e::ban, s::banned},   {s::open, e::shutdown, s::shut_down},
      {s::closed, e::close, {}},      {s::closed, e::kill, s::killed},
      {s::closed, e::ban, s::banned}, {s::closed, e::shutdown, s::shut_down},
  };
  const std::vector<s> dead = {s::killed, s::banned, s::shut_down};
  const fence_point guilty{42, 7};
  const fence_point earlier{41, 1};

  for (const auto& row : table) {
    auto entity = make_entity();
    // Reach `from` through the table itself.
    if (row.from == s::closed) REQUIRE(entity->become(e::close));
    REQUIRE(entity->status == row.from);
    const bool changed = entity->become(row.event, guilty);
    INFO(name_of(row.from) << " + event " << static_cast<int>(row.event));
    CHECK(changed == row.to.has_value());
    CHECK(entity->status == row.to.value_or(row.from));
    switch (entity->status) {
      case s::open:
        CHECK(!entity->dead_error);
        break;
      case s::closed:
        CHECK(entity->dead_error == make_error_code(errc::cancelled));
        CHECK(!entity->dead_cause);
        break;
      case s::killed:
        CHECK(entity->dead_error == make_error_code(errc::killed));
        CHECK(!entity->dead_cause);
        break;
      case s::banned:
        CHECK(entity->dead_error == make_error_code(errc::cancelled));
        REQUIRE(entity->dead_cause);
        CHECK(*entity->dead_cause == guilty);
        break;
      case s::shut_down:
        CHECK(entity->dead_error == make_error_code(errc::shutdown));
        CHECK(!entity->dead_cause);
        break;
    }
  }

  // The first death is final: no event changes a dead entity, its error or cause.
  for (const s from : dead) {
    for (const e event : {e::close, e::kill, e::ban, e::shutdown}) {
      auto entity = make_entity();
      const e to_reach = from == s::killed ? e::kill : from == s::banned ? e::ban : e::shutdown;
      REQUIRE(entity->become(to_reach, earlier));
      REQUIRE(entity->status == from);
      const auto error = entity->dead_error;
      const auto cause = entity->dead_cause;
      INFO(name_of(from) << " + event " << static_cast<int>(event));
      CHECK(!entity->become(event, guilty));
      CHECK(entity->status == from);
      CHECK(entity->dead_error == error);
      CHECK(entity->dead_cause == cause);
    }
  }
}

TEST_CASE("take_mailbox hands over every pushed job in order, with the entity's death",
          "[engine][entity_state]") {
  auto entity = make_entity();
  std::vector<job_block*> blocks;
  for (int i = 0; i < 3; ++i) {
    blocks.push_back(new job_block(fence_point{1, static_cast<std::uint64_t>(i + 1)}));
    entity->mailbox.push_back(*blocks.back());
  }
  REQUIRE(entity->become(entity_event::kill));
  const taken_jobs taken = entity->take_mailbox();
  CHECK(entity->mailbox.front() == nullptr);
  CHECK(entity->mailbox.back() == nullptr);
  CHECK(taken.entity_dead);
  CHECK(taken.error == make_error_code(errc::killed));
  CHECK(!taken.cause);
  std::vector<job_block*> order;
  for (job_block& b : taken.jobs) order.push_back(&b);
  CHECK(order == blocks);
  CHECK(entity->take_mailbox().jobs.front() == nullptr);
  for (auto* b : blocks) b->release();
}

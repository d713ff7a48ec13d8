// Splits a batch body `{"events":[...]}` into its events' texts, for sending a large spool record
// in slices, halving a batch that ingest refused as too large (413), and writing the events that
// ingest failed one by one to the dead-letter file.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aforo::core {

/// The texts of the events of `body`, in order, as views into `body`. Nothing when `body` is not
/// an object whose "events" member is an array of objects (or is not valid JSON); other members
/// are ignored. Parsed with RapidJSON's iterative reader (no recursion). Pure; thread-safe.
[[nodiscard]] std::optional<std::vector<std::string_view>> split_batch_body(std::string_view body);

/// `{"events":[...]}` of `events[from, to)`.
[[nodiscard]] std::string join_events(const std::vector<std::string_view>& events, std::size_t from, std::size_t to);

}  // namespace aforo::core

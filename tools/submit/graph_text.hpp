// Message helpers the graph reader (graph.cpp) and the file and whole-graph checks
// (graph_file.cpp) share.
#pragma once

#include <string>
#include <string_view>

namespace cosched::submit::detail {

/// `text` (valid UTF-8) in double quotes, escaped to stay on one printable line, cut
/// after 64 bytes.
std::string quote(std::string_view text);
/// "larger than ... bytes (256 MiB), the limit for a graph".
std::string too_large();

}  // namespace cosched::submit::detail

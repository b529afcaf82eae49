// Compact members of a job graph's jobs: a run may hold ten million jobs, each with
// an id and a list of dependencies, most of them short.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cosched::submit {

/// A string in 16 bytes: up to 15 bytes inline, a longer one on the heap (at most
/// 2^32 - 1 bytes). Reads as a std::string_view; made from text explicitly (or
/// by assignment), so that its comparisons apply only where one side is one.
///
/// @par Thread Safety
/// A plain value: distinct objects safe, shared objects safe for reading only.
class short_string {
 public:
  static constexpr std::size_t inline_capacity = 15;

  short_string() noexcept { set_inline_size(0); }
  explicit short_string(std::string_view text) { assign(text); }
  explicit short_string(const std::string& text) { assign(text); }
  explicit short_string(const char* text) { assign(text); }
  short_string(const short_string& other) { assign(other.view()); }
  short_string(short_string&& other) noexcept;
  short_string& operator=(const short_string& other);
  short_string& operator=(short_string&& other) noexcept;
  short_string& operator=(std::string_view text);
  short_string& operator=(const std::string& text) { return *this = std::string_view(text); }
  short_string& operator=(const char* text) { return *this = std::string_view(text); }
  ~short_string() { release(); }

  std::string_view view() const noexcept;
  operator std::string_view() const noexcept { return view(); }  // NOLINT: implicit
  std::string str() const { return std::string(view()); }
  const char* data() const noexcept { return view().data(); }
  std::size_t size() const noexcept { return view().size(); }
  bool empty() const noexcept { return size() == 0; }
  /// Whether the text is on the heap (longer than inline_capacity).
  bool on_heap() const noexcept { return tag() == heap_tag; }

  friend bool operator==(const short_string& a, const short_string& b) noexcept {
    return a.view() == b.view();
  }
  friend bool operator==(const short_string& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(const short_string& a, const std::string& b) noexcept { return a.view() == b; }
  friend bool operator==(const short_string& a, const char* b) noexcept { return a.view() == b; }
  friend std::string operator+(const short_string& a, std::string_view b) { return a.str().append(b); }
  friend std::string operator+(std::string_view a, const short_string& b) {
    return std::string(a).append(b.view());
  }
  friend std::ostream& operator<<(std::ostream& out, const short_string& s);

 private:
  static constexpr unsigned char heap_tag = 0xFF;
  unsigned char tag() const noexcept { return static_cast<unsigned char>(bytes_[inline_capacity]); }
  void set_inline_size(std::size_t n) noexcept { bytes_[inline_capacity] = static_cast<char>(n); }
  void assign(std::string_view text);  // *this holds nothing on the heap
  void release() noexcept;

  // Inline: bytes_[0, size) the text, bytes_[15] the size (0 to 15).
  // On the heap: bytes_[0, 8) the pointer, bytes_[8, 12) the size, bytes_[15] heap_tag.
  alignas(8) char bytes_[16];
};

/// nlohmann::json's conversion (found by argument-dependent lookup): a JSON string.
template <class BasicJson>
void to_json(BasicJson& json, const short_string& s) {
  json = s.view();
}

/// A string in 8 bytes, for a text most jobs do not have (a fault's): the empty
/// string costs nothing, any other is on the heap (at most 2^32 - 1 bytes).
/// short_string's interface.
///
/// @par Thread Safety
/// A plain value: distinct objects safe, shared objects safe for reading only.
class rare_string {
 public:
  rare_string() noexcept = default;
  explicit rare_string(std::string_view text) { assign(text); }
  explicit rare_string(const std::string& text) { assign(text); }
  explicit rare_string(const char* text) { assign(text); }
  rare_string(const rare_string& other) { assign(other.view()); }
  rare_string(rare_string&& other) noexcept : heap_(other.heap_) { other.heap_ = nullptr; }
  rare_string& operator=(const rare_string& other);
  rare_string& operator=(rare_string&& other) noexcept;
  rare_string& operator=(std::string_view text);
  rare_string& operator=(const std::string& text) { return *this = std::string_view(text); }
  rare_string& operator=(const char* text) { return *this = std::string_view(text); }
  ~rare_string() { release(); }

  std::string_view view() const noexcept;
  operator std::string_view() const noexcept { return view(); }  // NOLINT: implicit
  std::string str() const { return std::string(view()); }
  const char* data() const noexcept { return view().data(); }
  std::size_t size() const noexcept { return view().size(); }
  bool empty() const noexcept { return heap_ == nullptr; }

  friend bool operator==(const rare_string& a, const rare_string& b) noexcept { return a.view() == b.view(); }
  friend bool operator==(const rare_string& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(const rare_string& a, const std::string& b) noexcept { return a.view() == b; }
  friend bool operator==(const rare_string& a, const char* b) noexcept { return a.view() == b; }
  friend std::string operator+(const rare_string& a, std::string_view b) { return a.str().append(b); }
  friend std::string operator+(std::string_view a, const rare_string& b) {
    return std::string(a).append(b.view());
  }
  friend std::ostream& operator<<(std::ostream& out, const rare_string& s);

 private:
  void assign(std::string_view text);  // *this holds nothing on the heap
  void release() noexcept;

  // Null for the empty string; else the size (4 bytes), then the text.
  char* heap_ = nullptr;
};

template <class BasicJson>
void to_json(BasicJson& json, const rare_string& s) {
  json = s.view();
}

/// An optional time in 8 bytes, instead of std::optional's 16: its interface
/// as far as a graph uses it, with 2^64 - 1 for none. No graph time comes near
/// it (every time field is at most 1e15 us, max_run_us); holding 2^64 - 1
/// throws std::out_of_range.
///
/// @par Thread Safety
/// A plain value: distinct objects safe, shared objects safe for reading only.
class optional_time {
 public:
  constexpr optional_time() noexcept = default;
  constexpr optional_time(std::nullopt_t) noexcept {}             // NOLINT: implicit, as std::optional's
  optional_time(std::uint64_t value) : value_(checked(value)) {}  // NOLINT: implicit, as std::optional's
  optional_time(const std::optional<std::uint64_t>& value)        // NOLINT: implicit
      : value_(value ? checked(*value) : none) {}

  constexpr bool has_value() const noexcept { return value_ != none; }
  constexpr explicit operator bool() const noexcept { return has_value(); }
  /// The value; meaningful only when there is one (as std::optional's).
  constexpr std::uint64_t operator*() const noexcept { return value_; }
  constexpr std::uint64_t value_or(std::uint64_t fallback) const noexcept {
    return has_value() ? value_ : fallback;
  }
  operator std::optional<std::uint64_t>() const noexcept {  // NOLINT: implicit
    return has_value() ? std::optional<std::uint64_t>(value_) : std::nullopt;
  }

  friend constexpr bool operator==(optional_time a, optional_time b) noexcept { return a.value_ == b.value_; }
  friend bool operator==(optional_time a, const std::optional<std::uint64_t>& b) noexcept {
    return std::optional<std::uint64_t>(a) == b;
  }

 private:
  static constexpr std::uint64_t none = std::numeric_limits<std::uint64_t>::max();
  static std::uint64_t checked(std::uint64_t value);
  std::uint64_t value_ = none;
};

/// A job's dependencies: indices of 32 bits into graph::jobs, in order, repeats
/// kept. Up to two inline (16 bytes in all), more on the heap.
///
/// @par Thread Safety
/// A plain value: distinct objects safe, shared objects safe for reading only.
class dependency_list {
 public:
  using value_type = std::uint32_t;
  using const_iterator = const std::uint32_t*;
  static constexpr std::uint32_t inline_capacity = 2;

  dependency_list() noexcept {}
  dependency_list(std::initializer_list<std::size_t> indices);
  explicit dependency_list(const std::vector<std::size_t>& indices);
  dependency_list(const dependency_list& other);
  dependency_list(dependency_list&& other) noexcept;
  dependency_list& operator=(const dependency_list& other);
  dependency_list& operator=(dependency_list&& other) noexcept;
  dependency_list& operator=(std::initializer_list<std::size_t> indices) {
    return *this = dependency_list(indices);
  }
  dependency_list& operator=(const std::vector<std::size_t>& indices) {
    return *this = dependency_list(indices);
  }
  ~dependency_list() { release(); }

  /// Appends `index`; throws std::length_error when it does not fit 32 bits.
  void push_back(std::size_t index);
  void clear() noexcept;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const std::uint32_t* data() const noexcept { return on_heap() ? heap_ : inline_; }
  const_iterator begin() const noexcept { return data(); }
  const_iterator end() const noexcept { return data() + size_; }
  std::uint32_t operator[](std::size_t i) const noexcept { return data()[i]; }
  bool on_heap() const noexcept { return capacity_ > inline_capacity; }

  friend bool operator==(const dependency_list& a, const dependency_list& b) noexcept;
  friend bool operator==(const dependency_list& a, const std::vector<std::size_t>& b) noexcept;

 private:
  std::uint32_t* storage() noexcept { return on_heap() ? heap_ : inline_; }
  void reserve(std::uint32_t capacity);
  void release() noexcept;

  std::uint32_t size_ = 0;
  std::uint32_t capacity_ = inline_capacity;  // above inline_capacity: heap_ holds them
  union {
    std::uint32_t inline_[inline_capacity];
    std::uint32_t* heap_;
  };
};

}  // namespace cosched::submit

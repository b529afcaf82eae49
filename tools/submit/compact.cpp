// Compact members of a job graph's jobs.
#include "submit/compact.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <utility>

namespace cosched::submit {

// ------------------------------------------------------------------ short_string

void short_string::assign(std::string_view text) {
  if (text.size() <= inline_capacity) {
    std::memcpy(bytes_, text.data(), text.size());
    set_inline_size(text.size());
    return;
  }
  if (text.size() > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("cosched::submit::short_string: longer than 2^32 - 1 bytes");
  char* heap = new char[text.size()];
  std::memcpy(heap, text.data(), text.size());
  const auto size = static_cast<std::uint32_t>(text.size());
  std::memcpy(bytes_, &heap, sizeof heap);
  std::memcpy(bytes_ + sizeof heap, &size, sizeof size);
  bytes_[inline_capacity] = static_cast<char>(heap_tag);
}

void short_string::release() noexcept {
  if (!on_heap()) return;
  char* heap = nullptr;
  std::memcpy(&heap, bytes_, sizeof heap);
  delete[] heap;
  set_inline_size(0);
}

std::string_view short_string::view() const noexcept {
  if (!on_heap()) return {bytes_, tag()};
  const char* heap = nullptr;
  std::uint32_t size = 0;
  std::memcpy(&heap, bytes_, sizeof heap);
  std::memcpy(&size, bytes_ + sizeof heap, sizeof size);
  return {heap, size};
}

short_string::short_string(short_string&& other) noexcept {
  std::memcpy(bytes_, other.bytes_, sizeof bytes_);
  other.set_inline_size(0);
}

short_string& short_string::operator=(const short_string& other) {
  if (this != &other) *this = other.view();
  return *this;
}

short_string& short_string::operator=(short_string&& other) noexcept {
  if (this != &other) {
    release();
    std::memcpy(bytes_, other.bytes_, sizeof bytes_);
    other.set_inline_size(0);
  }
  return *this;
}

short_string& short_string::operator=(std::string_view text) {
  short_string copy(text);  // `text` may be this string's own
  return *this = std::move(copy);
}

std::ostream& operator<<(std::ostream& out, const short_string& s) { return out << s.view(); }

// ------------------------------------------------------------------ rare_string

void rare_string::assign(std::string_view text) {
  if (text.empty()) return;
  if (text.size() > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("cosched::submit::rare_string: longer than 2^32 - 1 bytes");
  const auto size = static_cast<std::uint32_t>(text.size());
  heap_ = new char[sizeof size + text.size()];
  std::memcpy(heap_, &size, sizeof size);
  std::memcpy(heap_ + sizeof size, text.data(), text.size());
}

void rare_string::release() noexcept {
  delete[] heap_;
  heap_ = nullptr;
}

std::string_view rare_string::view() const noexcept {
  if (!heap_) return {};
  std::uint32_t size = 0;
  std::memcpy(&size, heap_, sizeof size);
  return {heap_ + sizeof size, size};
}

rare_string& rare_string::operator=(const rare_string& other) {
  if (this != &other) *this = other.view();
  return *this;
}

rare_string& rare_string::operator=(rare_string&& other) noexcept {
  if (this != &other) {
    release();
    heap_ = std::exchange(other.heap_, nullptr);
  }
  return *this;
}

rare_string& rare_string::operator=(std::string_view text) {
  rare_string copy(text);  // `text` may be this string's own
  return *this = std::move(copy);
}

std::ostream& operator<<(std::ostream& out, const rare_string& s) { return out << s.view(); }

// ------------------------------------------------------------------ optional_time

std::uint64_t optional_time::checked(std::uint64_t value) {
  if (value == none) throw std::out_of_range("cosched::submit::optional_time: 2^64 - 1 is no time");
  return value;
}

// ------------------------------------------------------------------ dependency_list

dependency_list::dependency_list(std::initializer_list<std::size_t> indices) {
  if (indices.size() > inline_capacity) reserve(static_cast<std::uint32_t>(indices.size()));
  for (std::size_t index : indices) push_back(index);
}

dependency_list::dependency_list(const std::vector<std::size_t>& indices) {
  if (indices.size() > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("cosched::submit::dependency_list: more than 2^32 - 1 dependencies");
  if (indices.size() > inline_capacity) reserve(static_cast<std::uint32_t>(indices.size()));
  for (std::size_t index : indices) push_back(index);
}

dependency_list::dependency_list(const dependency_list& other) {
  if (other.size_ > inline_capacity) reserve(other.size_);
  std::copy(other.begin(), other.end(), storage());
  size_ = other.size_;
}

dependency_list::dependency_list(dependency_list&& other) noexcept
    : size_(std::exchange(other.size_, 0)), capacity_(std::exchange(other.capacity_, inline_capacity)) {
  if (on_heap())
    heap_ = other.heap_;
  else
    std::copy(other.inline_, other.inline_ + size_, inline_);
}

dependency_list& dependency_list::operator=(const dependency_list& other) {
  if (this != &other) *this = dependency_list(other);
  return *this;
}

dependency_list& dependency_list::operator=(dependency_list&& other) noexcept {
  if (this != &other) {
    release();
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, inline_capacity);
    if (on_heap())
      heap_ = other.heap_;
    else
      std::copy(other.inline_, other.inline_ + size_, inline_);
  }
  return *this;
}

void dependency_list::push_back(std::size_t index) {
  if (index > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("cosched::submit::dependency_list: a job index above 2^32 - 1");
  if (size_ == capacity_) {
    if (capacity_ == std::numeric_limits<std::uint32_t>::max())
      throw std::length_error("cosched::submit::dependency_list: more than 2^32 - 1 dependencies");
    const std::uint64_t doubled = std::uint64_t{capacity_} * 2;
    reserve(static_cast<std::uint32_t>(
        std::min<std::uint64_t>(doubled, std::numeric_limits<std::uint32_t>::max())));
  }
  storage()[size_++] = static_cast<std::uint32_t>(index);
}

void dependency_list::clear() noexcept {
  release();
  size_ = 0;
}

void dependency_list::reserve(std::uint32_t capacity) {
  if (capacity <= capacity_) return;
  auto* bigger = new std::uint32_t[capacity];
  std::copy(begin(), end(), bigger);
  release();
  heap_ = bigger;
  capacity_ = capacity;
}

void dependency_list::release() noexcept {
  if (on_heap()) delete[] heap_;
  capacity_ = inline_capacity;
}

bool operator==(const dependency_list& a, const dependency_list& b) noexcept {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

bool operator==(const dependency_list& a, const std::vector<std::size_t>& b) noexcept {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](std::uint32_t x, std::size_t y) { return std::size_t{x} == y; });
}

}  // namespace cosched::submit

#include "models/model_variant.h"

#include "models/model_catalog.h"

namespace steno::models {
namespace {

constexpr std::string_view kDtwSuffix = "#dtw";

bool EndsWithDtw(std::string_view key) {
  return key.size() > kDtwSuffix.size() && key.substr(key.size() - kDtwSuffix.size()) == kDtwSuffix;
}

}  // namespace

std::string VariantKey(const ModelVariant& variant) {
  return variant.dtw_words ? variant.model + std::string(kDtwSuffix) : variant.model;
}

ModelVariant ParseVariantKey(std::string_view key) {
  if (!EndsWithDtw(key)) return {std::string(key), false};
  return {std::string(key.substr(0, key.size() - kDtwSuffix.size())), true};
}

std::string ModelOfKey(std::string_view key) {
  return ParseVariantKey(key).model;
}

bool IsVariantKey(std::string_view key) {
  return EndsWithDtw(key);
}

std::string_view WordTimingOf(std::string_view kind, bool dtw_words) {
  if (kind != kWhisperKind) return "";
  return dtw_words ? "dtw" : "tokens";
}

}  // namespace steno::models

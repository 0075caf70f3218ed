// Page tokens of JobStore::List: they name the last row of the previous page (keyset paging:
// stable while jobs are added, and as fast for page 1000 as for page 1).
// "n.<created_ms>.<id>" (newest first) or "q.<priority>.<created_ms>.<id>" (queue order).
// Both stores (SQLite and PostgreSQL) read and write these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/job.h"
#include "store/job_store.h"

namespace steno::store {

struct PageKey {
  int64_t priority = 0;
  int64_t created_ms = 0;
  std::string id;
};

// nullopt for a token this code did not write for `order`.
std::optional<PageKey> ParsePageToken(std::string_view token, ListOrder order);
std::string PageToken(const Job& last, ListOrder order);

Error BadPageToken();  // kBadInput "bad_page_token"

}  // namespace steno::store

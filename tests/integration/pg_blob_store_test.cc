// PgBlobStore against a real PostgreSQL (support/pg_server.h): an upload pushed by one node is
// materialised, byte for byte and verified, by another node that never saw it; corrupt copies
// (in the database or on the pushing node's disk) are refused and leave nothing behind; pushing
// the same content twice stores it once; retention removes exactly the unreferenced old blobs.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <random>

#include "store/blob_store.h"
#include "store/pg_blob_store.h"
#include "store/pg_connection.h"
#include "store/pg_job_store.h"
#include "store/pg_migrations.h"
#include "support/pg_server.h"
#include "support/test_env.h"

namespace steno::store {
namespace {

using test::ScopedTempDir;
using test::SharedPgServer;

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// One node: its own data dir (local blob files) and its own connection to the shared database.
struct Node {
  ScopedTempDir dir{"steno-pgblob"};
  std::optional<BlobStore> local;
  std::unique_ptr<PgBlobStore> shared;
};

class PgBlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& server = SharedPgServer();
    ASSERT_TRUE(server.ok()) << server.error();
    url_ = server.CreateDatabase();
    ASSERT_FALSE(url_.empty()) << server.error();
  }

  PgOptions Options() {
    PgOptions options;
    options.url = url_;
    options.connect_timeout_s = 5;
    options.clock = [this] { return now_.load(); };
    return options;
  }

  std::unique_ptr<Node> MakeNode() {
    auto node = std::make_unique<Node>();
    auto local = BlobStore::Open(node->dir.path + "/blobs");
    EXPECT_TRUE(local.ok()) << local.error().message;
    if (!local.ok()) return nullptr;
    node->local.emplace(std::move(local).value());
    auto shared = PgBlobStore::Open(Options());
    EXPECT_TRUE(shared.ok()) << shared.error().message;
    if (!shared.ok()) return nullptr;
    node->shared = std::move(shared).value();
    return node;
  }

  // One number read over a separate connection.
  int64_t QueryInt(const std::string& sql, const std::vector<pg::Param>& params = {}) {
    auto conn = pg::Connection::Open(url_, 5);
    EXPECT_TRUE(conn.ok());
    if (!conn.ok()) return -1;
    auto rows = (*conn)->Query(sql, params);
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    return rows.ok() ? rows->Int(0, 0) : -1;
  }

  int64_t ChunkRows(const std::string& digest) {
    return QueryInt("SELECT count(*) FROM blob_chunks WHERE digest = $1", {pg::P(digest)});
  }

  std::string url_;
  std::atomic<int64_t> now_{1'700'000'000'000};
};

TEST_F(PgBlobStoreTest, UploadPushedOnOneNodeIsMaterialisedVerifiedOnAnother) {
  auto a = MakeNode();
  auto b = MakeNode();
  ASSERT_TRUE(a && b);
  // Not a multiple of the chunk size: the last chunk is short.
  const std::string content = RandomBytes(2 * PgBlobStore::kChunkBytes + 12345, 1);
  auto put = a->local->Put(content);
  ASSERT_TRUE(put.ok()) << put.error().message;
  auto pushed = a->shared->Push(*a->local, put->digest);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  EXPECT_EQ(pushed->digest, put->digest);
  EXPECT_EQ(pushed->size, static_cast<int64_t>(content.size()));
  EXPECT_EQ(ChunkRows(put->digest), 3);

  EXPECT_TRUE(b->shared->Contains(put->digest).value());
  EXPECT_FALSE(b->local->Contains(put->digest));
  auto path = b->shared->Materialise(*b->local, put->digest);
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(*path, b->local->PathOf(put->digest));
  EXPECT_TRUE(b->local->Verify(put->digest).ok());
  EXPECT_EQ(ReadAll(*path), content);
  // No temp file left behind by the download.
  EXPECT_EQ(b->local->RemoveTempFiles(INT64_MAX).value(), 0);

  auto listed = b->shared->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].digest, put->digest);
  EXPECT_EQ((*listed)[0].size, static_cast<int64_t>(content.size()));
  EXPECT_EQ((*listed)[0].mtime_ms, now_.load());
}

TEST_F(PgBlobStoreTest, EmptyAndSmallBlobsRoundTrip) {
  auto a = MakeNode();
  auto b = MakeNode();
  ASSERT_TRUE(a && b);
  for (const std::string& content : {std::string(), std::string("x"), RandomBytes(4096, 2)}) {
    auto put = a->local->Put(content);
    ASSERT_TRUE(put.ok());
    ASSERT_TRUE(a->shared->Push(*a->local, put->digest).ok());
    auto path = b->shared->Materialise(*b->local, put->digest);
    ASSERT_TRUE(path.ok()) << path.error().message;
    EXPECT_EQ(ReadAll(*path), content);
  }
}

TEST_F(PgBlobStoreTest, SameContentIsStoredOnceAndPushingAgainRefreshesItsTime) {
  auto a = MakeNode();
  auto b = MakeNode();
  ASSERT_TRUE(a && b);
  const std::string content = RandomBytes(PgBlobStore::kChunkBytes + 1, 3);
  auto put_a = a->local->Put(content);
  auto put_b = b->local->Put(content);
  ASSERT_TRUE(put_a.ok() && put_b.ok());
  // Both nodes push at once: one row, one set of chunks.
  auto fa =
      std::async(std::launch::async, [&] { return a->shared->Push(*a->local, put_a->digest); });
  auto fb =
      std::async(std::launch::async, [&] { return b->shared->Push(*b->local, put_b->digest); });
  auto ra = fa.get();
  auto rb = fb.get();
  ASSERT_TRUE(ra.ok()) << ra.error().message;
  ASSERT_TRUE(rb.ok()) << rb.error().message;
  EXPECT_EQ(ra->size, rb->size);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM blobs"), 1);
  EXPECT_EQ(ChunkRows(put_a->digest), 2);

  now_ += 60'000;
  ASSERT_TRUE(a->shared->Push(*a->local, put_a->digest).ok());
  EXPECT_EQ(QueryInt("SELECT created_ms FROM blobs"), now_.load());
  EXPECT_EQ(ChunkRows(put_a->digest), 2);
}

TEST_F(PgBlobStoreTest, CorruptCopyInTheDatabaseIsRefusedAndLeavesNothingLocally) {
  auto a = MakeNode();
  auto b = MakeNode();
  ASSERT_TRUE(a && b);
  auto put = a->local->Put(RandomBytes(PgBlobStore::kChunkBytes + 100, 4));
  ASSERT_TRUE(put.ok());
  ASSERT_TRUE(a->shared->Push(*a->local, put->digest).ok());
  // One flipped byte in the second chunk.
  auto& server = SharedPgServer();
  std::string dbname = url_.substr(url_.rfind('/') + 1);
  ASSERT_EQ(server.Exec(dbname,
                        "UPDATE blob_chunks SET data = set_byte(data, 7, get_byte(data, "
                        "7) # 1) WHERE seq = 1"),
            "");
  auto path = b->shared->Materialise(*b->local, put->digest);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.error().code, "blob_corrupt");
  EXPECT_EQ(path.error().kind, ErrorKind::kIntegrity);
  EXPECT_FALSE(b->local->Contains(put->digest));
  EXPECT_TRUE(b->local->List()->empty());
  EXPECT_EQ(b->local->RemoveTempFiles(INT64_MAX).value(), 0);

  // A missing chunk is as bad.
  ASSERT_EQ(server.Exec(dbname, "DELETE FROM blob_chunks WHERE seq = 1"), "");
  path = b->shared->Materialise(*b->local, put->digest);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.error().code, "blob_corrupt");
  EXPECT_FALSE(b->local->Contains(put->digest));
}

TEST_F(PgBlobStoreTest, CorruptLocalFileIsNotPushed) {
  auto a = MakeNode();
  ASSERT_TRUE(a);
  auto put = a->local->Put(RandomBytes(5000, 5));
  ASSERT_TRUE(put.ok());
  {
    std::fstream f(a->local->PathOf(put->digest), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('!');
  }
  auto pushed = a->shared->Push(*a->local, put->digest);
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.error().code, "blob_corrupt");
  EXPECT_FALSE(a->shared->Contains(put->digest).value());
  EXPECT_EQ(QueryInt("SELECT count(*) FROM blob_chunks"), 0);
}

TEST_F(PgBlobStoreTest, UnknownAndMalformedDigests) {
  auto a = MakeNode();
  ASSERT_TRUE(a);
  const std::string absent(64, 'a');
  auto path = a->shared->Materialise(*a->local, absent);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.error().code, "blob_not_found");
  auto pushed = a->shared->Push(*a->local, absent);
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.error().code, "blob_not_found");
  EXPECT_EQ(a->shared->Push(*a->local, "../etc/passwd").error().code, "bad_digest");
  EXPECT_EQ(a->shared->Materialise(*a->local, "ABC").error().code, "bad_digest");
  EXPECT_FALSE(a->shared->Contains("nope").value());
  EXPECT_TRUE(a->shared->Remove(absent).ok());
}

TEST_F(PgBlobStoreTest, RetentionRemovesOnlyOldUnreferencedBlobs) {
  auto a = MakeNode();
  ASSERT_TRUE(a);
  auto jobs = PgJobStore::Open(Options());
  ASSERT_TRUE(jobs.ok()) << jobs.error().message;
  auto referenced = a->local->Put(RandomBytes(PgBlobStore::kChunkBytes * 2, 6));
  auto orphan = a->local->Put(RandomBytes(300, 7));
  ASSERT_TRUE(referenced.ok() && orphan.ok());
  ASSERT_TRUE(a->shared->Push(*a->local, referenced->digest).ok());
  ASSERT_TRUE(a->shared->Push(*a->local, orphan->digest).ok());
  ASSERT_TRUE((*jobs)->Insert({"base", Priority::kNormal, {}, referenced->digest, ""}).ok());

  const int64_t grace = 10'000;
  now_ += grace - 1;  // still within the grace period: kept
  auto sweep = a->shared->RemoveUnreferenced(grace);
  ASSERT_TRUE(sweep.ok()) << sweep.error().message;
  EXPECT_EQ(sweep->removed, 0);

  now_ += 2;
  sweep = a->shared->RemoveUnreferenced(grace);
  ASSERT_TRUE(sweep.ok());
  EXPECT_EQ(sweep->removed, 1);
  EXPECT_EQ(sweep->bytes_freed, 300);
  EXPECT_FALSE(a->shared->Contains(orphan->digest).value());
  EXPECT_TRUE(a->shared->Contains(referenced->digest).value());
  EXPECT_EQ(ChunkRows(orphan->digest), 0) << "chunks outlived their blob";
  EXPECT_EQ(ChunkRows(referenced->digest), 2);

  // Remove takes the chunks too.
  ASSERT_TRUE(a->shared->Remove(referenced->digest).ok());
  EXPECT_EQ(QueryInt("SELECT count(*) FROM blob_chunks"), 0);
}

TEST_F(PgBlobStoreTest, OpeningTheBlobStoreAloneMigratesTheDatabase) {
  auto a = MakeNode();
  ASSERT_TRUE(a);
  auto conn = pg::Connection::Open(url_, 5);
  ASSERT_TRUE(conn.ok());
  EXPECT_EQ(pg::SchemaVersion(**conn).value(), pg::LatestSchemaVersion());
}

}  // namespace
}  // namespace steno::store

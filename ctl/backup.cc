#include "backup.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <ostream>

#include "connect.h"
#include "exit_codes.h"
#include "kvd/client.h"
#include "kvd/env.h"
#include "kvd/fd.h"
#include "kvd/snapshot.h"

namespace kvctl {
namespace {

constexpr uint32_t kChunk = 1024 * 1024;

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

kvd::Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return kvd::Status::FromErrno(errno, "writing " + path);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return kvd::Status::Ok();
}

kvd::Status FsyncDir(const std::string& dir) {
  kvd::Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.valid()) return kvd::Status::FromErrno(errno, "opening directory " + dir);
  if (::fsync(d.get()) != 0) return kvd::Status::FromErrno(errno, "fsync of directory " + dir);
  return kvd::Status::Ok();
}

// Pulls the backup into tmp (already created as fd) and makes it durable.
kvd::Status Pull(kvd::Client& cl, const kvd::BackupHandle& h, kvd::Fd fd, const std::string& tmp) {
  uint64_t offset = 0;
  for (;;) {
    auto chunk = cl.BackupRead(h.id, offset, kChunk);
    if (!chunk.has_value()) return chunk.error().Annotate("backup interrupted at byte " + std::to_string(offset));
    if (chunk->empty()) break;
    KVD_RETURN_IF_ERROR(WriteAll(fd.get(), *chunk, tmp));
    offset += chunk->size();
  }
  if (offset != h.size) {
    return kvd::Status::IOError("the server sent " + std::to_string(offset) + " bytes of a " +
                                std::to_string(h.size) + "-byte backup");
  }
  if (::fsync(fd.get()) != 0) return kvd::Status::FromErrno(errno, "fsync of " + tmp);
  if (::close(fd.release()) != 0) return kvd::Status::FromErrno(errno, "closing " + tmp);
  return kvd::Status::Ok();
}

// Reads the file back through the snapshot reader: every CRC, and what the
// server said it would be.
kvd::Status Verify(const kvd::BackupHandle& h, const std::string& tmp) {
  auto info = kvd::VerifySnapshot(kvd::Env::Default(), tmp);
  if (!info.has_value()) return info.error().Annotate("the backup does not verify");
  if (info->lsn != h.lsn || info->entries != h.entries || info->bytes != h.size) {
    return kvd::Status::Corruption("the backup verifies but is not the one announced (lsn " +
                                   std::to_string(info->lsn) + ", " + std::to_string(info->entries) + " keys)");
  }
  return kvd::Status::Ok();
}

}  // namespace

int CmdBackup(const CommandContext& c, const std::string& file) {
  auto fail = [&](const kvd::Status& s) {
    c.err << "kvctl: backup to " << file << " failed (" << file << " not written): " << ExplainTimeout(s).message()
          << "\n";
    return kExitServer;
  };
  auto client = ConnectTo(c.socket, c.timeout);
  if (!client.has_value()) return fail(client.error());
  kvd::Client& cl = **client;
  auto h = cl.BackupBegin();
  if (!h.has_value()) return fail(h.error());

  const std::string tmp = file + ".tmp-" + std::to_string(::getpid());
  kvd::Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return fail(kvd::Status::FromErrno(errno, "creating " + tmp));
  kvd::Status st = Pull(cl, *h, std::move(fd), tmp);
  (void)cl.BackupEnd(h->id);  // the server also lets go when the connection closes
  if (st.ok()) st = Verify(*h, tmp);
  if (st.ok() && ::rename(tmp.c_str(), file.c_str()) != 0) st = kvd::Status::FromErrno(errno, "renaming " + tmp);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return fail(st);
  }
  // Renamed: FILE is whole. Only the directory entry may not be durable yet.
  if (kvd::Status d = FsyncDir(DirOf(file)); !d.ok()) {
    c.err << "kvctl: backup written to " << file << " but its directory could not be synced: " << d.message()
          << "\n";
    return kExitServer;
  }
  c.out << "OK lsn=" << h->lsn << " keys=" << h->entries << " bytes=" << h->size << " path=" << file << "\n";
  return kExitOk;
}

}  // namespace kvctl

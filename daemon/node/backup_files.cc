#include "node/backup_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kvd::daemon {
namespace {

// The snapshot header's entry_count (docs/snapshot_format.md): bytes 24..31.
constexpr off_t kEntryCountOffset = 24;

}  // namespace

Result<proto::BackupBeginReply> BackupFiles::Open(uint64_t session, const std::string& path) {
  if (files_.size() >= max_open_) {
    return Status::Busy("too many backups in progress (" + std::to_string(max_open_) + "); try again later");
  }
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, "backup: open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "backup: fstat " + path);
  uint64_t entries = 0;
  if (::pread(fd.get(), &entries, sizeof entries, kEntryCountOffset) != static_cast<ssize_t>(sizeof entries)) {
    return Status::IOError("backup: cannot read the header of " + path);
  }
  const uint64_t id = next_id_++;
  files_[id] = File{session, std::move(fd), static_cast<uint64_t>(st.st_size)};
  return proto::BackupBeginReply{id, static_cast<uint64_t>(st.st_size), entries};
}

Status BackupFiles::Read(uint64_t session, uint64_t id, uint64_t offset, uint32_t max_bytes, std::string* out) {
  out->clear();
  auto it = files_.find(id);
  if (it == files_.end() || it->second.session != session) {
    return Status::InvalidArgument("no backup " + std::to_string(id) + " on this connection");
  }
  const File& f = it->second;
  if (offset >= f.size) return Status::Ok();
  const uint64_t n = std::min<uint64_t>(max_bytes, f.size - offset);
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(f.fd.get(), out->data() + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      out->clear();
      return Status::FromErrno(errno, "backup: read");
    }
    if (r == 0) {
      out->clear();
      return Status::IOError("backup: the snapshot file ended early");
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status BackupFiles::End(uint64_t session, uint64_t id) {
  auto it = files_.find(id);
  if (it == files_.end() || it->second.session != session) {
    return Status::InvalidArgument("no backup " + std::to_string(id) + " on this connection");
  }
  files_.erase(it);
  return Status::Ok();
}

void BackupFiles::DropSession(uint64_t session) {
  std::erase_if(files_, [&](const auto& e) { return e.second.session == session; });
}

}  // namespace kvd::daemon

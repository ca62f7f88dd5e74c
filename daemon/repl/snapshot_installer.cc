#include "repl/snapshot_installer.h"

#include "kvd/crc32c.h"
#include "kvd/snapshot.h"

namespace kvd::daemon::repl {

std::string SnapshotInstaller::incoming_path() const { return JoinPath(dir_, std::string(kIncomingName)); }

Status SnapshotInstaller::Begin(Lsn snapshot_lsn) {
  Abort();
  const std::string tmp = incoming_path();
  KVD_RETURN_IF_ERROR(env_->CreateDirs(dir_));
  if (env_->FileExists(tmp)) KVD_RETURN_IF_ERROR(env_->RemoveFile(tmp));
  KVD_ASSIGN_OR_RETURN(file_, env_->NewWritableFile(tmp, OpenMode::kCreateExclusive));
  lsn_ = snapshot_lsn;
  bytes_ = 0;
  crc_ = 0;
  return Status::Ok();
}

Status SnapshotInstaller::Append(std::string_view bytes) {
  if (!active()) return Status::InvalidArgument("SNAPSHOT_CHUNK outside a snapshot transfer");
  Status s = file_->WriteAt(bytes_, std::as_bytes(std::span(bytes.data(), bytes.size())));
  if (!s.ok()) {
    Abort();
    return s.Annotate("writing " + incoming_path());
  }
  bytes_ += bytes.size();
  crc_ = Crc32cExtend(crc_, bytes.data(), bytes.size());
  return Status::Ok();
}

Result<std::string> SnapshotInstaller::Finish(uint64_t total_bytes, uint32_t file_crc) {
  KVD_ASSIGN_OR_RETURN(std::string tmp, Verify(total_bytes, file_crc));
  const std::string path = JoinPath(dir_, SnapshotFileName(lsn_));
  Status s = env_->RenameFile(tmp, path);
  if (s.ok()) s = env_->SyncDir(dir_);
  if (!s.ok()) {
    // Nothing counts before the directory fsync returned.
    (void)env_->RemoveFile(path);
    (void)env_->RemoveFile(tmp);
    return s.Annotate("installing " + path);
  }
  return path;
}

Result<std::string> SnapshotInstaller::Verify(uint64_t total_bytes, uint32_t file_crc) {
  if (!active()) return Status::InvalidArgument("SNAPSHOT_END outside a snapshot transfer");
  const std::string tmp = incoming_path();
  auto refuse = [&](Status s) {
    Abort();
    if (env_->FileExists(tmp)) (void)env_->RemoveFile(tmp);  // closed already
    return s;
  };
  if (total_bytes != bytes_ || file_crc != crc_) {
    return refuse(Status::Corruption("snapshot transfer: received " + std::to_string(bytes_) + " bytes with CRC " +
                                     std::to_string(crc_) + ", the primary sent " + std::to_string(total_bytes) +
                                     " bytes with CRC " + std::to_string(file_crc)));
  }
  Status s = file_->SyncAll();
  Status c = file_->Close();
  file_.reset();
  if (s.ok()) s = c;
  if (!s.ok()) return refuse(s.Annotate("fsync of " + tmp));
  // The format's own checks (header, every entry, body CRC) and the LSN
  // announced in SNAPSHOT_BEGIN, before the file can count.
  Result<SnapshotInfo> info = VerifySnapshot(env_, tmp);
  if (!info) return refuse(info.error());
  if (info->lsn != lsn_) {
    return refuse(Status::Corruption("snapshot transfer: the file is a snapshot at LSN " + std::to_string(info->lsn) +
                                     ", SNAPSHOT_BEGIN announced " + std::to_string(lsn_)));
  }
  return tmp;
}

void SnapshotInstaller::Abort() {
  if (!active()) return;
  (void)file_->Close();
  file_.reset();
  (void)env_->RemoveFile(incoming_path());
}

}  // namespace kvd::daemon::repl

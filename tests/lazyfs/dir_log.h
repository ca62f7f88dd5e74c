// The directory operations of kvd_lazyfs that no directory fsync has made
// durable yet, and how a power cut undoes them.
//
// Creations, removals and renames reach the backing directory at once (so
// the namespace the file system shows is the backing one), but each is
// logged first with what undoing it needs: a removed file is not deleted but
// moved to the hidden trash directory, as is the file a rename replaced. An
// fsync of a directory commits the operations on its entries (the trash of
// those goes for good); a power cut undoes every uncommitted one, newest
// first. Each directory's log is committed whole, so within a directory the
// committed operations always precede the uncommitted ones and undoing the
// rest in reverse order finds every name where the operation left it.
// Renames stay within one directory (the file system refuses others).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lazyfs {

inline constexpr char kTrashDir[] = ".lazyfs-trash";

struct DirOp {
  enum class Kind : uint8_t { kCreate, kMkdir, kUnlink, kRmdir, kRename };
  Kind kind;
  std::string dir;    // the directory whose fsync makes it durable ("." = the root)
  std::string path;   // the entry (rename: the new name)
  std::string from;   // rename: the old name
  std::string trash;  // unlink: where the file waits; rename: the file it replaced ("" if none)
  mode_t mode = 0;    // rmdir: to recreate the directory
};

class DirLog {
 public:
  // root_fd: the backing directory (not owned); paths are relative to it.
  explicit DirLog(int root_fd) : root_(root_fd) {}

  // A fresh name in the trash directory.
  std::string NewTrashPath();
  void Record(DirOp op) { ops_.push_back(std::move(op)); }
  // fsync of dir (or every directory): its operations become durable. Returns
  // the trash paths that may now be deleted (the caller forgets their caches).
  std::vector<std::string> Commit(const std::string& dir);
  std::vector<std::string> CommitAll();
  // Power cut: undoes every uncommitted operation, newest first. Returns how
  // many undo steps failed (each is reported on stderr); 0 is the only good answer.
  int Revert();
  size_t pending() const { return ops_.size(); }

 private:
  int Undo(const DirOp& op);
  int RemoveTree(const std::string& path);

  int root_;
  uint64_t next_trash_ = 0;
  std::vector<DirOp> ops_;  // uncommitted, oldest first
};

}  // namespace lazyfs

// kvd_lazyfs: a FUSE file system that loses what was not synced when told to
// (a power cut), for the daemon crash loop that trusts only the kernel
// (tests/lazyfs/crash_loop_lazyfs.py). The model is in lazyfs.h and
// docs/testing.md, "The power-cut file system".
//
//   kvd_lazyfs [--debug] BACKING_DIR MOUNTPOINT
//
// Runs in the foreground; prints "mounted" on stdout once the mount is up,
// and ends (unmounting) when the process that started it dies.
// Control: write "cut" (power cut; every later call fails with EIO) or
// "sync" to MOUNTPOINT/.lazyfs-ctl; reading it gives the counters. Unmount
// with fusermount3 -u (or SIGTERM); a mount whose power is on syncs everything
// first, like a clean shutdown. Exit status 0; 1 if an undo of a power cut
// failed (the model broke); 2 on bad arguments or backing directory; 3 if the
// mount itself failed (no FUSE here).
//
// One thread serves every request (fuse_loop): the kernel's requests are
// handled one at a time, which makes the model trivially safe under kvd's
// threads. Files are opened direct_io and every timeout is 0, so the kernel
// caches no data, attributes or names that a power cut would have to reach.
#define FUSE_USE_VERSION 31

#include <fuse.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "lazyfs.h"

namespace lazyfs {
namespace {

LazyFs* g_fs = nullptr;

// A file handle: an open file of the model, the control file, or a directory.
struct Handle {
  std::unique_ptr<OpenFile> file;  // null for the control file and directories
  std::string dir;                 // a directory's path (fsyncdir may come without one)
};
// Every handle, owned here: the kernel may never send the release of a file
// that was open when the mount went away, and a sanitizer build must not
// report that as a leak.
std::unordered_map<uint64_t, std::unique_ptr<Handle>> g_handles;
uint64_t g_next_fh = 1;

uint64_t Register(std::unique_ptr<Handle> h) {
  g_handles[g_next_fh] = std::move(h);
  return g_next_fh++;
}
Handle* H(const fuse_file_info* fi) {
  if (fi == nullptr) return nullptr;
  auto it = g_handles.find(fi->fh);
  return it == g_handles.end() ? nullptr : it->second.get();
}
OpenFile* F(const fuse_file_info* fi) {
  Handle* h = H(fi);
  return h == nullptr ? nullptr : h->file.get();
}

bool IsCtlHandle(const fuse_file_info* fi) {
  Handle* h = H(fi);
  return h != nullptr && !h->file && h->dir.empty();
}

std::string Rel(const char* path) {
  if (path == nullptr || path[0] != '/' || path[1] == '\0') return ".";
  return std::string(path + 1);
}
bool IsCtl(const char* path) { return path != nullptr && Rel(path) == kCtlName; }

void* Init(fuse_conn_info* conn, fuse_config* cfg) {
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_WRITEBACK_CACHE);
  cfg->direct_io = 1;
  cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 0;
  cfg->hard_remove = 1;  // unlink really unlinks (no .fuse_hidden files)
  cfg->nullpath_ok = 1;  // open files keep working after an unlink
  return nullptr;
}

void Destroy(void*) {
  if (g_fs->power_on()) {
    if (int rc = g_fs->SyncAll(); rc < 0) std::fprintf(stderr, "lazyfs: final sync: %s\n", std::strerror(-rc));
  }
}

int GetAttr(const char* path, struct stat* st, fuse_file_info* fi) {
  if (IsCtlHandle(fi) || (fi == nullptr && IsCtl(path))) {
    std::memset(st, 0, sizeof(*st));
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    return 0;
  }
  return g_fs->GetAttr(Rel(path), F(fi), st);
}

int Open(const char* path, fuse_file_info* fi) {
  auto h = std::make_unique<Handle>();
  if (!IsCtl(path)) {
    if (int rc = g_fs->OpenFileAt(Rel(path), fi->flags, &h->file); rc < 0) return rc;
  }
  fi->direct_io = 1;
  fi->fh = Register(std::move(h));
  return 0;
}

int Create(const char* path, mode_t mode, fuse_file_info* fi) {
  if (IsCtl(path)) return -EEXIST;
  auto h = std::make_unique<Handle>();
  if (int rc = g_fs->Create(Rel(path), mode, fi->flags, &h->file); rc < 0) return rc;
  fi->direct_io = 1;
  fi->fh = Register(std::move(h));
  return 0;
}

int Read(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  if (IsCtlHandle(fi)) {
    const std::string s = g_fs->Status();
    if (static_cast<size_t>(off) >= s.size()) return 0;
    const size_t n = std::min(size, s.size() - static_cast<size_t>(off));
    std::memcpy(buf, s.data() + off, n);
    return static_cast<int>(n);
  }
  if (F(fi) == nullptr) return -EBADF;
  return static_cast<int>(g_fs->Read(*F(fi), buf, size, static_cast<uint64_t>(off)));
}

int Write(const char*, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  if (IsCtlHandle(fi)) {
    int rc = g_fs->Control(std::string(buf, size));
    return rc < 0 ? rc : static_cast<int>(size);
  }
  if (F(fi) == nullptr) return -EBADF;
  return static_cast<int>(g_fs->Write(*F(fi), buf, size, static_cast<uint64_t>(off)));
}

int Truncate(const char* path, off_t size, fuse_file_info* fi) {
  if (IsCtlHandle(fi) || (fi == nullptr && IsCtl(path))) return 0;  // "> .lazyfs-ctl" truncates first
  if (size < 0) return -EINVAL;
  return g_fs->Truncate(Rel(path), F(fi), static_cast<uint64_t>(size));
}

int Fallocate(const char*, int mode, off_t off, off_t len, fuse_file_info* fi) {
  if (F(fi) == nullptr) return -EOPNOTSUPP;
  return g_fs->Allocate(*F(fi), mode, static_cast<uint64_t>(off), static_cast<uint64_t>(len));
}

int Fsync(const char*, int /*datasync: both persist data and size alike*/, fuse_file_info* fi) {
  if (IsCtlHandle(fi)) return 0;
  if (F(fi) == nullptr) return -EBADF;
  return g_fs->Fsync(*F(fi));
}

int Flush(const char*, fuse_file_info*) { return 0; }

int Release(const char*, fuse_file_info* fi) {
  auto it = g_handles.find(fi->fh);
  if (it == g_handles.end()) return 0;
  if (it->second->file) g_fs->Release(std::move(it->second->file));
  g_handles.erase(it);
  return 0;
}

int Unlink(const char* path) { return IsCtl(path) ? -EPERM : g_fs->Unlink(Rel(path)); }
int Mkdir(const char* path, mode_t mode) { return IsCtl(path) ? -EEXIST : g_fs->Mkdir(Rel(path), mode); }
int Rmdir(const char* path) { return g_fs->Rmdir(Rel(path)); }
int Rename(const char* from, const char* to, unsigned flags) {
  if (IsCtl(from) || IsCtl(to)) return -EPERM;
  return g_fs->Rename(Rel(from), Rel(to), flags);
}

int OpenDir(const char* path, fuse_file_info* fi) {
  auto h = std::make_unique<Handle>();
  h->dir = Rel(path);
  fi->fh = Register(std::move(h));
  return 0;
}
int ReleaseDir(const char*, fuse_file_info* fi) {
  g_handles.erase(fi->fh);
  return 0;
}
int ReadDir(const char*, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info* fi, fuse_readdir_flags) {
  Handle* h = H(fi);
  if (h == nullptr) return -EBADF;
  return g_fs->ReadDir(h->dir, [&](const char* name) { fill(buf, name, nullptr, 0, static_cast<fuse_fill_dir_flags>(0)); });
}
int FsyncDir(const char*, int, fuse_file_info* fi) {
  Handle* h = H(fi);
  return h == nullptr ? -EBADF : g_fs->FsyncDir(h->dir);
}

int Chmod(const char* path, mode_t mode, fuse_file_info*) { return g_fs->Chmod(Rel(path), mode); }
int Utimens(const char* path, const struct timespec tv[2], fuse_file_info*) {
  return IsCtl(path) ? 0 : g_fs->Utimens(Rel(path), tv);
}
int StatFs(const char*, struct statvfs* st) { return g_fs->StatFs(st); }

fuse_operations MakeOps() {
  fuse_operations ops{};
  ops.init = Init;
  ops.destroy = Destroy;
  ops.getattr = GetAttr;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write = Write;
  ops.truncate = Truncate;
  ops.fallocate = Fallocate;
  ops.fsync = Fsync;
  ops.flush = Flush;
  ops.release = Release;
  ops.unlink = Unlink;
  ops.mkdir = Mkdir;
  ops.rmdir = Rmdir;
  ops.rename = Rename;
  ops.opendir = OpenDir;
  ops.releasedir = ReleaseDir;
  ops.readdir = ReadDir;
  ops.fsyncdir = FsyncDir;
  ops.chmod = Chmod;
  ops.utimens = Utimens;
  ops.statfs = StatFs;
  return ops;
}

int Main(int argc, char** argv) {
  bool debug = false;
  int i = 1;
  if (i < argc && std::strcmp(argv[i], "--debug") == 0) {
    debug = true;
    ++i;
  }
  if (argc - i != 2) {
    std::fprintf(stderr, "usage: %s [--debug] BACKING_DIR MOUNTPOINT\n", argv[0]);
    return 2;
  }
  const pid_t parent = ::getppid();
  const char* backing = argv[i];
  const char* mountpoint = argv[i + 1];
  std::unique_ptr<LazyFs> fs;
  if (int rc = LazyFs::Open(backing, &fs); rc < 0) {
    std::fprintf(stderr, "lazyfs: backing directory %s: %s%s\n", backing, std::strerror(-rc),
                 rc == -ENOTEMPTY ? " (trash left by a lazyfs that died: not a disk image)" : "");
    return 2;
  }
  g_fs = fs.get();

  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  fuse_opt_add_arg(&args, argv[0]);
  fuse_opt_add_arg(&args, "-o");
  fuse_opt_add_arg(&args, "fsname=lazyfs,subtype=lazyfs");
  if (debug) fuse_opt_add_arg(&args, "-d");
  const fuse_operations ops = MakeOps();
  fuse* f = fuse_new(&args, &ops, sizeof(ops), nullptr);
  fuse_opt_free_args(&args);
  if (f == nullptr) return 2;
  if (fuse_mount(f, mountpoint) != 0) {
    fuse_destroy(f);
    return 3;
  }
  fuse_session* se = fuse_get_session(f);
  fuse_set_signal_handlers(se);
  // A test driver that dies (a watchdog's _exit, a ctest timeout) takes the
  // mount with it: SIGTERM ends the loop and unmounts.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) fuse_exit(f);
  std::printf("mounted\n");
  std::fflush(stdout);
  int rc = fuse_loop(f);
  fuse_remove_signal_handlers(se);
  fuse_unmount(f);
  fuse_destroy(f);  // calls Destroy: the final sync
  const uint64_t revert_errors = fs->stats().revert_errors;
  g_handles.clear();
  g_fs = nullptr;
  fs.reset();
  if (rc != 0) std::fprintf(stderr, "lazyfs: the FUSE loop ended with %d\n", rc);
  if (revert_errors != 0) {
    std::fprintf(stderr, "lazyfs: %llu undo steps of power cuts failed\n",
                 static_cast<unsigned long long>(revert_errors));
    return 1;
  }
  return rc == 0 ? 0 : 1;
}

}  // namespace
}  // namespace lazyfs

int main(int argc, char** argv) { return lazyfs::Main(argc, argv); }

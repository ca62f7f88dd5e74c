// FaultEnv's directory-operation journal: see fault_dir_journal.h.
#include "testing/fault_dir_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

namespace kvd::fault {
namespace {

std::string JournalPath(const std::string& dir) { return JoinPath(dir, kJournalName); }

// The entries of dir's journal, each with the offset of its line.
std::vector<std::pair<DirJournalEntry, uint64_t>> ReadJournal(Env* base, const std::string& dir) {
  std::vector<std::pair<DirJournalEntry, uint64_t>> out;
  auto text = base->ReadFileToString(JournalPath(dir));
  if (!text) return out;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) break;  // a line cut by a kill: its operation never happened
    std::string_view line(text->data() + pos, nl - pos);
    const uint64_t start = pos;
    pos = nl + 1;
    std::vector<std::string> f;
    for (size_t s = 0;;) {
      size_t t = line.find('\t', s);
      f.emplace_back(line.substr(s, t == std::string_view::npos ? std::string_view::npos : t - s));
      if (t == std::string_view::npos) break;
      s = t + 1;
    }
    if (f.size() != 4 || f[0].size() != 1) continue;
    out.push_back({{static_cast<DirJournalEntry::Kind>(f[0][0]), f[1], f[2], f[3]}, start});
  }
  return out;
}

}  // namespace

Status AppendDirJournal(const std::string& dir, const DirJournalEntry& e) {
  std::string line = std::string(1, static_cast<char>(e.kind)) + "\t" + e.path + "\t" + e.from + "\t" + e.trash + "\n";
  const std::string path = JournalPath(dir);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "fault env: open " + path);
  ssize_t n = ::write(fd, line.data(), line.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size())) return Status::FromErrno(n < 0 ? err : EIO, "fault env: write " + path);
  return Status::Ok();
}

void RevertDirJournal(Env* base, const std::string& dir) {
  const std::string journal = JournalPath(dir);
  auto entries = ReadJournal(base, dir);
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const DirJournalEntry& e = it->first;
    switch (e.kind) {
      case DirJournalEntry::kCreate:
        if (base->FileExists(e.path)) (void)base->RemoveFile(e.path);
        break;
      case DirJournalEntry::kRemove:
        if (base->FileExists(e.trash)) (void)base->RenameFile(e.trash, e.path);
        break;
      case DirJournalEntry::kRename:
        // Guarded so that a second run after a kill half-way does not undo twice.
        if (!base->FileExists(e.from) && base->FileExists(e.path)) (void)base->RenameFile(e.path, e.from);
        if (!e.trash.empty() && base->FileExists(e.trash)) (void)base->RenameFile(e.trash, e.path);
        break;
    }
    // Undone: drop its line, so that a run after a kill here undoes each entry at most twice
    // (and the guards above make the second time a no-op).
    (void)::truncate(journal.c_str(), static_cast<off_t>(it->second));
  }
  if (base->FileExists(journal)) (void)base->RemoveFile(journal);
}

void CommitDirJournal(Env* base, const std::string& dir) {
  for (const auto& entry : ReadJournal(base, dir)) {
    const DirJournalEntry& e = entry.first;
    if (!e.trash.empty() && base->FileExists(e.trash)) (void)base->RemoveFile(e.trash);
  }
  if (base->FileExists(JournalPath(dir))) (void)base->RemoveFile(JournalPath(dir));
}

}  // namespace kvd::fault

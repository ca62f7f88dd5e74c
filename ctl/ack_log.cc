#include "ack_log.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>

namespace kvctl {

kvd::Status WriteAckLog(const std::string& path, std::vector<AckSample> samples, uint64_t dropped) {
  std::sort(samples.begin(), samples.end(), [](const AckSample& a, const AckSample& b) { return a.lsn < b.lsn; });
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!f) return kvd::Status::FromErrno(errno, "opening " + path);
  bool ok = std::fprintf(f.get(), "# lsn ack_ns (CLOCK_MONOTONIC); samples %zu; dropped %llu\n", samples.size(),
                         static_cast<unsigned long long>(dropped)) > 0;
  for (const AckSample& s : samples) {
    if (!ok) break;
    ok = std::fprintf(f.get(), "%llu %llu\n", static_cast<unsigned long long>(s.lsn),
                      static_cast<unsigned long long>(s.ack_ns)) > 0;
  }
  const int saved = errno;
  if (!ok) return kvd::Status::FromErrno(saved, "writing " + path);
  if (std::fclose(f.release()) != 0) return kvd::Status::FromErrno(errno, "writing " + path);
  return kvd::Status::Ok();
}

}  // namespace kvctl

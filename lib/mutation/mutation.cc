// KVD_MUTANT's run-time choice (kvd/mutation.h). Compiled only into a build
// configured with -DKVD_MUTATION=ON.
#include "kvd/mutation.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kvd::mutation {
namespace {

struct Entry {
  const char* name;
  Mutant mutant;
};

constexpr Entry kMutants[] = {
#define KVD_MUTANT_ENTRY_(name) {#name, Mutant::name},
    KVD_MUTANTS(KVD_MUTANT_ENTRY_)
#undef KVD_MUTANT_ENTRY_
};

// Unset or empty: none. Anything else must name a mutant, or the process
// stops here, loudly: a misspelt mutant must not look like one a test caught.
Mutant FromEnvironment() {
  const char* v = std::getenv("KVD_MUTANT");
  if (v == nullptr || *v == '\0') return Mutant::kNone;
  for (const Entry& e : kMutants) {
    if (std::strcmp(e.name, v) == 0) return e.mutant;
  }
  std::fprintf(stderr, "KVD_MUTANT=%s names no mutant; the mutants are:", v);
  for (const Entry& e : kMutants) std::fprintf(stderr, " %s", e.name);
  std::fprintf(stderr, "\n");
  std::abort();
}

Mutant Selected() {
  static const Mutant selected = FromEnvironment();  // read once, thread-safe
  return selected;
}

// Checked when the process starts, not when it first reaches a switch.
[[maybe_unused]] const Mutant kCheckedAtStart = Selected();

}  // namespace

bool Active(Mutant m) { return m == Selected(); }

}  // namespace kvd::mutation

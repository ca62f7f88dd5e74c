// Writes the frame decoder's seed corpus: every request and reply frame of
// tests/proto/wire_examples.h, one file each, plus one stream of several
// pipelined requests. Usage: gen_frame_corpus DIR  (fuzz/corpus/frame_decoder)
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/proto/wire_examples.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  int n = 0;
  std::string stream;
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
    n++;
  };
  for (const auto& ex : kvd::proto::examples::AllExamples()) {
    std::string name;
    for (char c : ex.frame.title) {
      if (c == ' ' || c == ',') {
        if (!name.empty() && name.back() != '_') name += '_';
      } else if (std::isalnum(static_cast<unsigned char>(c))) {
        name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      if (name.size() > 40) break;
    }
    write(name, ex.frame.bytes);
    if (!ex.frame.reply) stream += ex.frame.bytes;
  }
  write("pipelined_requests", stream);
  std::printf("wrote %d seeds to %s\n", n, dir.c_str());
  return 0;
}

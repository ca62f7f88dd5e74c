// Splits one REPL / stdin line into tokens.
//
// Grammar (like redis-cli's sdssplitargs):
//   tokens are separated by whitespace (space, \t, \r, \n, \v, \f);
//   a bare token is taken literally up to the next whitespace (a '"' or '\'
//   inside it is an ordinary byte);
//   a token that starts with '"' is quoted: it ends at the next unescaped '"',
//   which must be followed by whitespace or the end of the line; inside it
//   \" \\ \n \t \r and \xNN (two hex digits) are escapes, any other escape is
//   an error. "" is the empty token.
// Tokenize(FormatToken(s)) == {s} for every byte string s (format.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kvd/status.h"

namespace kvctl {

// kInvalidArgument with a message naming the problem and its column.
kvd::Result<std::vector<std::string>> Tokenize(std::string_view line);

}  // namespace kvctl

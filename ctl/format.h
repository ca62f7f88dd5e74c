// Rendering bytes and numbers for people and for line-oriented scripts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kvctl {

// True when s must be quoted to be read back as one token by Tokenize():
// empty, any byte outside 0x21..0x7e (space, control, non-ASCII), a '"' or
// '\' anywhere (not strictly needed, but a bare \x41 would mislead a reader),
// or a leading '(' (so a value can never look like the reply "(nil)").
bool NeedsQuoting(std::string_view s);

// s inside double quotes with \" \\ \n \t \r and \xNN (lowercase hex) escapes.
std::string Quote(std::string_view s);

// s as-is when it needs no quoting, else Quote(s). Tokenize(FormatToken(s)) == {s}.
std::string FormatToken(std::string_view s);

// For one-field-per-column output (scan's KEY<TAB>VALUE lines): no quotes;
// bytes 0x20..0x7e except '\' unchanged, '\' -> \\, \t \n \r, others \xNN.
// Never produces a tab or newline, so lines and columns stay intact.
std::string EscapeForLine(std::string_view s);

// For a value shown on a terminal (`kvctl get`): valid UTF-8 text unchanged
// except '\' -> \\ and \n \t \r; every byte of a control character (C0,
// DEL, C1 whether raw or UTF-8 encoded) or of invalid UTF-8 -> \xNN. So a
// value cannot send escape sequences to the terminal, and the output is one line.
std::string EscapeForTerminal(std::string_view s);

// "1.5 KiB", "12.0 MiB"; exact "N B" below 1 KiB.
std::string HumanBytes(uint64_t bytes);
// "850 us", "12.3 ms", "4.20 s", "3m05s", "2h03m", "5d04h".
std::string HumanSeconds(double seconds);

}  // namespace kvctl

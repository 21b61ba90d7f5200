# Doxygen input filter for the public headers (docs/Doxyfile.in).
#
# maas' headers are commented with plain "//" comments, written to be read
# in the header itself. For the API reference this filter turns
#   - the opening comment of a header into its file page: a brief (the first
#     sentence) and the whole comment, kept as written (verbatim);
#   - a "//" comment on its own line(s) into a "///" comment, documenting
#     the declaration that follows;
#   - a trailing "// ..." after a member or enumerator into "///< ...".
# Lines are never added or dropped after the opening comment, so Doxygen's
# line numbers in the remainder stay close to the header's.
BEGIN { opening = 1; n = 0 }

opening && /^\/\// {
  line = $0
  sub(/^\/\/ ?/, "", line)
  gsub(/\*\//, "* /", line)
  buf[n++] = line
  next
}

opening {
  opening = 0
  if (n > 0) emit_file_page()
}

{
  line = $0
  if (line ~ /^[ \t]*\/\/[^\/!]/ || line ~ /^[ \t]*\/\/$/) {
    sub(/\/\//, "///", line)
    # "\r" in a comment is text, not a Doxygen command.
    gsub(/\\/, "@backslash@", line)
    gsub(/@backslash@/, "\\\\\\\\", line)
  } else if (line ~ /^[ \t]*[^ \t\/].*[;,{][ \t]+\/\/ /) {
    # A trailing comment after code: the last "  // " on the line.
    p = match(line, /[;,{][ \t]+\/\/ [^"]*$/)
    if (p > 0) {
      code = substr(line, 1, p)
      rest = substr(line, p + 1)
      sub(/\/\/ /, "///< ", rest)
      sub(/\/\/\/< >/, "///< \\\\>", rest)  # "> 0: ..." is text, not a quote
      line = code rest
    }
  }
  print line
}

END { if (opening && n > 0) emit_file_page() }

function emit_file_page(   i, first, brief, dot) {
  # The brief: the first sentence of the first paragraph, after "maas/x.hpp: ".
  first = ""
  for (i = 0; i < n && buf[i] != ""; i++) first = first (first == "" ? "" : " ") buf[i]
  sub(/^[^ ]*\.hpp: */, "", first)
  dot = match(first, /\. /)
  brief = dot > 0 ? substr(first, 1, dot) : first
  brief = toupper(substr(brief, 1, 1)) substr(brief, 2)
  print "/** @file"
  print " *  @brief " brief
  print " *"
  print " *  @verbatim"
  for (i = 0; i < n; i++) print buf[i]
  print " *  @endverbatim"
  print " */"
}

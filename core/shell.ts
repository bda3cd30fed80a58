/** Characters no POSIX shell treats specially: Python's shlex.quote leaves exactly these words bare. */
const BARE = /^[\w@%+=:,./-]+$/;

/**
 * The one shell quoting of the lab: POSIX single quotes, understood alike by dash, bash, zsh and fish (bash's
 * $'...', zx's quote, is not POSIX). The word is wrapped in '...' with each ' written as '\'' and the empty
 * string is ''. Words of characters no shell treats specially stay bare, so logs and .cmd files read naturally.
 */
export function shQuote(word: string): string {
  return BARE.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** An argv as one shell command line, each element arriving as one word (ssh's remote command, a cell's .cmd). */
export function shellLine(argv: readonly string[]): string {
  return argv.map(shQuote).join(' ');
}

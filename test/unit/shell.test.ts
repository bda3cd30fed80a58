import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { shQuote, shellLine } from '../../core/shell.js';

describe('shell quoting (core/shell.ts)', () => {
  it('leaves plain words bare, as shlex.quote does', () => {
    for (const w of ['memcaslap', '-s', '10.77.0.1:6969', '/usr/bin/ffkx', 'vms.accel=kvm', 'a,b', 'user@host', '50%', '+x']) expect(shQuote(w)).toBe(w);
  });

  it("wraps anything else in single quotes, each ' as '\\'', and the empty string as ''", () => {
    expect(shQuote('')).toBe("''");
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
    expect(shQuote("''")).toBe(`''\\'''\\'''`);
    expect(shQuote('a b')).toBe("'a b'");
    expect(shQuote('$(reboot)')).toBe("'$(reboot)'");
    expect(shQuote('`id`;*')).toBe("'`id`;*'");
    expect(shQuote('~')).toBe("'~'");
    expect(shQuote('line\nbreak')).toBe("'line\nbreak'");
    expect(shQuote('naïve')).toBe("'naïve'");
  });

  it('a line of argv reaches sh as the same argv, word for word', () => {
    const argv = ['', "it's", 'a b', '$HOME', '`id`', '"q"', '\\', 'x\ny', '*', '-n', 'plain=1', "'"];
    const out = execFileSync('sh', ['-c', `printf '%s\\0' ${shellLine(argv)}`]).toString('utf8');
    expect(out.split('\0').slice(0, -1)).toEqual(argv);
  });

  it('joins with single spaces', () => {
    expect(shellLine(['echo', "it's", ''])).toBe(`echo 'it'\\''s' ''`);
    expect(shellLine([])).toBe('');
  });
});

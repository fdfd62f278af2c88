import { describe, expect, it } from 'vitest';
import { keepAliveText } from '../../../src/cli/connection-output.js';
import { cell, duration, formatFields, formatTable, time } from '../../../src/cli/tables.js';

describe('the tables of the control commands', () => {
  it('aligns columns two spaces apart, right-aligns where asked, trims trailing blanks', () => {
    const rows = [
      { n: 'a', v: 1, s: 'x' },
      { n: 'longer', v: 100, s: '' },
    ];
    const table = formatTable(
      [
        { header: 'NAME', value: (r: (typeof rows)[number]) => r.n },
        { header: 'N', value: (r) => r.v, right: true },
        { header: 'LAST', value: (r) => r.s },
      ],
      rows,
    );
    expect(table).toBe(['NAME      N  LAST', 'a         1  x', 'longer  100'].join('\n'));
  });

  it('shows null as "-" and never lets a control character through', () => {
    expect(cell(null)).toBe('-');
    expect(cell(undefined)).toBe('-');
    expect(cell('sip:a\u001b[31m@b')).toBe('sip:a?[31m@b');
    expect(formatFields([['a', 1], ['long name', null]])).toBe('a          1\nlong name  -');
  });

  it('durations and times', () => {
    expect([0, 59, 60, 185, 3600, 7380, 86_400 + 7200].map(duration)).toEqual(['0s', '59s', '1m00s', '3m05s', '1h00m', '2h03m', '1d02h']);
    expect(duration(undefined)).toBe('-');
    expect(time('2026-12-02T10:11:12.345Z')).toBe('2026-12-02 10:11:12Z');
    expect(time(null)).toBe('-');
  });

  it('keep-alive as the API reports it', () => {
    expect(keepAliveText({ enabled: false })).toBe('off');
    expect(keepAliveText({ enabled: true })).toBe('on (OS timers)');
    expect(keepAliveText({ enabled: true, userTimeoutMs: 0 })).toBe('on (OS timers)');
    expect(keepAliveText({ enabled: true, idleS: 30, intervalS: 7, count: 4, userTimeoutMs: 20_000 })).toBe('on idle=30s interval=7s count=4 user-timeout=20000ms');
  });
});

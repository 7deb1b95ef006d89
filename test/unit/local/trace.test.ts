import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DATA_DIR_ENV,
  dataDir,
  formatTraceCsv,
  loadImageSizes,
  loadLoadLatenciesMs,
  loadTrace,
  parseCsv,
  REPAIR,
  sampledSize,
} from '../../../local/trace';

const dir = mkdtempSync(join(tmpdir(), 'warmboot-trace-test-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const SIZES = [100, 200, 300, 400, 500];

describe('parseCsv', () => {
  it('handles quoted commas, doubled quotes, newlines inside quotes, CRLF and a trailing newline', () => {
    const rows = parseCsv('a,b,c\r\n"x,1","say ""hi""","two\nlines"\r\n,,\n');

    expect(rows).toEqual([
      ['a', 'b', 'c'],
      ['x,1', 'say "hi"', 'two\nlines'],
      ['', '', ''],
    ]);
  });

  it('reads a last line without a newline', () => {
    expect(parseCsv('h\n1')).toEqual([['h'], ['1']]);
  });
});

describe('loadTrace — Alibaba format', () => {
  const path = file(
    'alibaba.csv',
    [
      'gmt_create,predict_type,groupId,checkpoint_model_version_id,num_lora',
      '2024-11-15 16:57:50,TXT_2_IMG,G0000,M0000,0',
      '2024-11-15 16:57:40,TXT_2_IMG,G0001,M0001,0',
      '2024-11-15 16:58:00,TXT_2_IMG,G0001,,0',
      '2024-11-16 16:57:40,IMG_2_IMG,G0002,M0000,1',
    ].join('\n'),
  );

  it('uses gmt_create as arrival (UTC, relative to the first request), the model as image and groupId as tenant', () => {
    const trace = loadTrace(path, { imageSizes: SIZES });

    expect(trace.format).toBe('alibaba');
    expect(trace.originS).toBe(Date.UTC(2024, 10, 15, 16, 57, 40) / 1000);
    expect(trace.requests.map((r) => [r.timeS, r.image, r.tenant])).toEqual([
      [0, 'M0001', 'G0001'],
      [10, 'M0000', 'G0000'],
      [86_400, 'M0000', 'G0002'],
    ]);
  });

  it('skips rows without an image and samples one size per image from the given sizes', () => {
    const trace = loadTrace(path, { imageSizes: SIZES });

    expect(trace.skippedRows).toBe(1);
    expect(trace.repairs).toEqual({ [REPAIR.noImage]: 1, [REPAIR.sampledSize]: 2 });
    expect(trace.sizeSource).toBe('sampled');
    const m0 = trace.requests.filter((r) => r.image === 'M0000').map((r) => r.sizeBytes);
    expect(new Set(m0).size).toBe(1);
    expect(SIZES).toContain(m0[0]);
  });
});

describe('loadTrace — generic format', () => {
  it('keeps opaque image ids (/, +, =, quoted commas) and the optional columns', () => {
    const path = file(
      'generic.csv',
      [
        'image,timestamp_s,size_bytes,tenant,instance_type',
        '"registry.example/team/app:v1+build=7",100.5,123456,acme,m7i.large',
        '"weird,id==",50,,globex,',
        'ami-0abc/x+y=,75,999,,c7g.xlarge',
      ].join('\r\n'),
    );

    const trace = loadTrace(path, { imageSizes: SIZES });

    expect(trace.format).toBe('generic');
    expect(trace.sizeSource).toBe('mixed');
    expect(trace.requests).toEqual([
      { timeS: 0, image: 'weird,id==', sizeBytes: sampledSize('weird,id==', SIZES), tenant: 'globex' },
      { timeS: 25, image: 'ami-0abc/x+y=', sizeBytes: 999, instanceType: 'c7g.xlarge' },
      {
        timeS: 50.5,
        image: 'registry.example/team/app:v1+build=7',
        sizeBytes: 123456,
        tenant: 'acme',
        instanceType: 'm7i.large',
      },
    ]);
  });

  it('needs only timestamp_s and image, keeps file order for equal times, and skips unusable rows', () => {
    const path = file('minimal.csv', 'timestamp_s,image\n5,b\n5,a\nnot-a-time,c\n1,\n');

    const trace = loadTrace(path, { imageSizes: SIZES });

    expect(trace.requests.map((r) => r.image)).toEqual(['b', 'a']);
    expect(trace.skippedRows).toBe(2);
  });

  it('names the missing columns', () => {
    const path = file('bad.csv', 'time,img\n1,a\n');

    expect(() => loadTrace(path, { imageSizes: SIZES })).toThrow('missing column(s) timestamp_s, image');
  });

  it('is named by its file label unless a name is given', () => {
    const path = file('named.csv', 'timestamp_s,image\n1,a\n');

    expect(loadTrace(path, { imageSizes: SIZES }).name).toBe(path);
    expect(loadTrace(path, { imageSizes: SIZES, name: 'mine' }).name).toBe('mine');
  });
});

describe('loadTrace — what it repairs or skips is counted per reason', () => {
  it('counts rows without an image or a usable time (hex, blank, malformed), trimmed cells and header names, conflicting sizes and sampled sizes', () => {
    const path = file(
      'repairs.csv',
      [
        'timestamp_s, image ,size_bytes,tenant',
        '1, a ,100,acme',
        '2,a,200, acme',
        '0x10,b,,',
        ',c,,',
        '1e,d,,',
        '3,,,',
        '4,e,,',
      ].join('\n'),
    );

    const trace = loadTrace(path, { imageSizes: SIZES });

    expect(trace.repairs).toEqual({
      [REPAIR.whitespaceTrimmed]: 3,
      [REPAIR.badTime]: 3,
      [REPAIR.noImage]: 1,
      [REPAIR.conflictingSize]: 1,
      [REPAIR.sampledSize]: 1,
    });
    expect(trace.skippedRows).toBe(4);
    expect(trace.requests.map((r) => [r.image, r.sizeBytes, r.tenant])).toEqual([
      ['a', 100, 'acme'],
      ['a', 100, 'acme'],
      ['e', sampledSize('e', SIZES), undefined],
    ]);
  });

  it('reports nothing for a clean file', () => {
    const path = file('clean.csv', 'timestamp_s,image,size_bytes\n1,a,10\n2,b,20\n');

    expect(loadTrace(path).repairs).toEqual({});
  });

  it('fails on an invalid size_bytes, naming row and column, instead of sampling a size for it', () => {
    for (const bad of ['0', '-5', '12.5', 'big', '0x10']) {
      const path = file('bad-size.csv', `timestamp_s,image,size_bytes\n1,a,10\n2,b,${bad}\n`);

      expect(() => loadTrace(path, { imageSizes: SIZES })).toThrow(
        `row 3, column size_bytes: '${bad}' is not a positive whole number of bytes`,
      );
    }
  });

  it('rejects a header with both Alibaba and generic columns, and a repeated column (unnamed ones aside)', () => {
    const both = file('both.csv', 'gmt_create,checkpoint_model_version_id,groupId,timestamp_s,image\n');
    const twice = file('twice.csv', 'timestamp_s,image,image\n1,a,b\n');
    const unnamed = file('unnamed.csv', 'timestamp_s,image,,\n1,a,,\n');

    expect(() => loadTrace(both, { imageSizes: SIZES })).toThrow(
      'has both the Alibaba columns (gmt_create, checkpoint_model_version_id) and generic ones (timestamp_s, image)',
    );
    expect(() => loadTrace(twice, { imageSizes: SIZES })).toThrow('column image appears twice in the header');
    expect(loadTrace(unnamed, { imageSizes: SIZES }).requests).toHaveLength(1);
  });
});

describe('loadTrace — platform', () => {
  it('reads linux and windows from the optional platform column, leaving blanks unset', () => {
    const path = file(
      'platform.csv',
      'timestamp_s,image,platform\n1,a,windows\n2,b,linux\n3,c,\n4,a,windows\n',
    );

    const trace = loadTrace(path, { imageSizes: SIZES });

    expect(trace.requests.map((r) => r.platform)).toEqual(['windows', 'linux', undefined, 'windows']);
  });

  it('rejects another value, or an image given two platforms, naming the row and column', () => {
    const other = file('platform-bad.csv', 'timestamp_s,image,platform\n1,a,linux\n2,b,Windows\n');
    const conflict = file('platform-conflict.csv', 'timestamp_s,image,platform\n1,a,linux\n2,a,windows\n');

    expect(() => loadTrace(other, { imageSizes: SIZES })).toThrow(
      "row 3, column platform: 'Windows' is not one of linux, windows",
    );
    expect(() => loadTrace(conflict, { imageSizes: SIZES })).toThrow(
      'row 3, column platform: image a is windows here but linux on row 2',
    );
  });
});

describe('formatTraceCsv', () => {
  it('writes a trace the loader reads back to the same requests', () => {
    const source = file(
      'source.csv',
      [
        'timestamp_s,image,size_bytes,tenant,instance_type,platform',
        '10.125,"id,with ""quotes""",5,acme,m7i.large,windows',
        '10.3,plain,7,,,linux',
        '12,plain,7,globex,,linux',
      ].join('\n'),
    );
    const trace = loadTrace(source);
    const copy = file('copy.csv', formatTraceCsv(trace));

    expect(loadTrace(copy).requests).toEqual(trace.requests);
    expect(loadTrace(copy).repairs).toEqual({});
  });
});

describe('image sizes and load latencies', () => {
  it('samples the same size for an id on every call, and different ids spread over the sample', () => {
    const sizes = Array.from({ length: 100 }, (_, i) => (i + 1) * 1000);
    const ids = Array.from({ length: 200 }, (_, i) => `img-${i}`);

    expect(ids.map((id) => sampledSize(id, sizes))).toEqual(ids.map((id) => sampledSize(id, sizes)));
    expect(new Set(ids.map((id) => sampledSize(id, sizes))).size).toBeGreaterThan(50);
  });

  it('reads the size column (dropping zero sizes) and the value column of the shared files', () => {
    const sizes = loadImageSizes(
      file('sizes.csv', '"","image","size"\n"1","a",300\n"2","b",0\n"3","c",100\n'),
    );
    const latencies = loadLoadLatenciesMs(
      file('lat.csv', 'timestamp_anon,value,container_ip\n1,2639.0,x\n2,39010.0,y\n'),
    );

    expect(sizes).toEqual([100, 300]);
    expect(latencies).toEqual([2639, 39010]);
  });

  it("reads the repository's own data/ unless the environment overrides it", () => {
    expect(dataDir({})).toBe(resolve(__dirname, '../../../data'));
    expect(dataDir({ [DATA_DIR_ENV]: '/elsewhere' })).toBe('/elsewhere');
  });
});

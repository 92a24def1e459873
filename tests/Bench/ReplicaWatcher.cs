// Compiled by Invoke-Bench.ps1 with Add-Type (references K4os.Compression.LZ4.Streams from the
// built module's dependencies folder). Not part of the product.
using System;
#nullable enable
using System.Collections.Generic;
using System.IO;
using System.Threading;
using K4os.Compression.LZ4.Streams;

namespace SqliteReplicaBench
{
    /// <summary>One replica object as the watcher first saw it complete.</summary>
    public sealed class SeenObject
    {
        public string Path = "";
        public long SeenUnixMs;
        public long MaxRowId;
        public long DecodedBytes;
        public long StoredBytes;
    }

    /// <summary>
    /// Watches a local-directory replica (any tool's: the Litestream v0.3 layout) and records when
    /// each finished snapshot or WAL segment appears, which rows it carries (the largest rowid
    /// in the table leaf pages it holds: the test writer's ids only grow) and its decoded size.
    /// inotify wakes it; a scan every PollMs is the fallback. Objects are decoded once, outside
    /// the replicator's processes, so the watcher's CPU never counts as the replicator's.
    /// </summary>
    public sealed class ReplicaWatcher : IDisposable
    {
        private readonly string _root;
        private readonly int _pollMs;
        private readonly Dictionary<string, SeenObject> _seen = new Dictionary<string, SeenObject>(StringComparer.Ordinal);
        private readonly List<SeenObject> _order = new List<SeenObject>();
        private readonly AutoResetEvent _wake = new AutoResetEvent(false);
        private readonly Thread _thread;
        private readonly FileSystemWatcher? _fsw;
        private volatile bool _stop;
        private long _maxRowId;
        private long _decodedBytes;

        public ReplicaWatcher(string root, int pollMs)
        {
            _root = root;
            _pollMs = pollMs;
            Directory.CreateDirectory(root);
            try
            {
                _fsw = new FileSystemWatcher(root) { IncludeSubdirectories = true, NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName };
                _fsw.Created += (s, e) => _wake.Set();
                _fsw.Renamed += (s, e) => _wake.Set();
                _fsw.EnableRaisingEvents = true;
            }
            catch (IOException)
            {
                _fsw = null; // inotify limits: polling alone
            }

            _thread = new Thread(Run) { IsBackground = true, Name = "replica-watcher" };
            _thread.Start();
        }

        public long MaxRowId => Interlocked.Read(ref _maxRowId);

        public long DecodedBytes => Interlocked.Read(ref _decodedBytes);

        public string? LastError { get; private set; }

        public SeenObject[] Objects()
        {
            lock (_order)
            {
                return _order.ToArray();
            }
        }

        /// <summary>The first time (unix ms) an object carrying row <paramref name="id"/> or a later one was seen; -1 if never.</summary>
        public long FirstSeenCarrying(long id)
        {
            long best = -1;
            lock (_order)
            {
                foreach (var o in _order)
                {
                    if (o.MaxRowId >= id && (best < 0 || o.SeenUnixMs < best))
                    {
                        best = o.SeenUnixMs;
                    }
                }
            }

            return best;
        }

        private void Run()
        {
            while (!_stop)
            {
                try
                {
                    Scan();
                }
                catch (Exception e)
                {
                    LastError = e.Message;
                }

                _wake.WaitOne(_pollMs);
            }
        }

        private void Scan()
        {
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            foreach (string file in Directory.EnumerateFiles(_root, "*.lz4", SearchOption.AllDirectories))
            {
                if (_seen.ContainsKey(file))
                {
                    continue;
                }

                SeenObject? o = Decode(file, now);
                if (o is null)
                {
                    continue; // still being written (or vanished): next scan
                }

                _seen[file] = o;
                lock (_order)
                {
                    _order.Add(o);
                }

                Interlocked.Add(ref _decodedBytes, o.DecodedBytes);
                long current;
                while ((current = Interlocked.Read(ref _maxRowId)) < o.MaxRowId &&
                       Interlocked.CompareExchange(ref _maxRowId, o.MaxRowId, current) != current)
                {
                }
            }
        }

        private static SeenObject? Decode(string file, long now)
        {
            try
            {
                using var raw = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
                long stored = raw.Length;
                using var lz4 = LZ4Stream.Decode(raw, 0, false);
                // A snapshot is pages; a segment is frames (24-byte header + page), with the 32-byte
                // WAL header first when it starts the index.
                bool snapshot = file.EndsWith(".snapshot.lz4", StringComparison.Ordinal);
                var frame = new byte[(snapshot ? 0 : 24) + PageSize];
                long total = 0;
                long maxId = 0;
                bool first = true;
                while (true)
                {
                    int n = Fill(lz4, frame, first && !snapshot ? 32 : frame.Length);
                    if (n == 0)
                    {
                        break;
                    }

                    total += n;
                    if (first && !snapshot && n == 32 && (frame[0] == 0x37 && frame[1] == 0x7f && frame[2] == 0x06 && (frame[3] == 0x82 || frame[3] == 0x83)))
                    {
                        first = false;
                        continue; // the WAL header
                    }

                    if (first && !snapshot)
                    {
                        // No WAL header: these 32 bytes begin the first frame.
                        n += Fill(lz4, frame, frame.Length - 32, 32);
                        total += n - 32;
                    }

                    first = false;
                    if (n < frame.Length)
                    {
                        break;
                    }

                    uint pageNo = snapshot ? 0 : (uint)(frame[0] << 24 | frame[1] << 16 | frame[2] << 8 | frame[3]);
                    int pageStart = snapshot ? 0 : 24;
                    bool pageOne = snapshot ? total == PageSize : pageNo == 1;
                    maxId = Math.Max(maxId, MaxRowIdOfLeaf(frame, pageStart, pageOne ? 100 : 0));
                }

                return new SeenObject { Path = file, SeenUnixMs = now, MaxRowId = maxId, DecodedBytes = total, StoredBytes = stored };
            }
            catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException || e is ArgumentException || e is InvalidOperationException)
            {
                return null;
            }
        }

        /// <summary>Page size of the databases watched (the test writer's default).</summary>
        public const int PageSize = 4096;

        private static int Fill(Stream s, byte[] buffer, int count, int offset = 0)
        {
            int done = 0;
            while (done < count)
            {
                int n = s.Read(buffer, offset + done, count - done);
                if (n <= 0)
                {
                    break;
                }

                done += n;
            }

            return done;
        }

        /// <summary>The largest rowid of a table b-tree leaf page (type 0x0D); 0 for any other page.</summary>
        private static long MaxRowIdOfLeaf(byte[] b, int page, int headerAt)
        {
            int h = page + headerAt;
            if (b[h] != 0x0D)
            {
                return 0;
            }

            int cells = b[h + 3] << 8 | b[h + 4];
            long max = 0;
            for (int i = 0; i < cells; i++)
            {
                int ptrAt = h + 8 + 2 * i;
                if (ptrAt + 1 >= page + PageSize)
                {
                    break;
                }

                int cell = page + (b[ptrAt] << 8 | b[ptrAt + 1]);
                if (cell < page || cell >= page + PageSize)
                {
                    continue;
                }

                int p = cell;
                ReadVarint(b, ref p, page + PageSize); // payload size
                long rowid = ReadVarint(b, ref p, page + PageSize);
                if (rowid > max)
                {
                    max = rowid;
                }
            }

            return max;
        }

        private static long ReadVarint(byte[] b, ref int p, int end)
        {
            long v = 0;
            for (int i = 0; i < 9 && p < end; i++)
            {
                byte x = b[p++];
                if (i == 8)
                {
                    return (v << 8) | x;
                }

                v = (v << 7) | (long)(x & 0x7f);
                if ((x & 0x80) == 0)
                {
                    return v;
                }
            }

            return v;
        }

        public void Dispose()
        {
            _stop = true;
            _wake.Set();
            _thread.Join(5000);
            _fsw?.Dispose();
        }
    }
}

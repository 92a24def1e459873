using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Engine.Replication;

/// <summary>
/// When each captured position was first seen, for one replica, until the store confirms it: the
/// replica's lag is the age of the oldest captured commit it has not confirmed. Not thread-safe
/// (the syncer guards it).
/// </summary>
/// <remarks>
/// A mark (P, t) says: every commit after the previous mark and up to P was captured by t. When
/// the store confirms Q, the marks up to Q go, and the lag is measured from the first mark after
/// Q, the commit that is still unconfirmed. Memory is bounded: past <see cref="MaxMarks"/>,
/// neighbouring marks merge keeping the earlier time and the later position, which can only make
/// the lag look longer, never shorter.
/// </remarks>
internal sealed class UnconfirmedCommits
{
    public const int MaxMarks = 4096;

    private readonly List<(Position Position, DateTimeOffset CapturedAt)> _marks = new();

    public int Count => _marks.Count;

    /// <summary>The capture time of the oldest unconfirmed commit (null: none known).</summary>
    public DateTimeOffset? Oldest => _marks.Count > 0 ? _marks[0].CapturedAt : null;

    /// <summary>Records that everything up to <paramref name="captured"/> was captured by <paramref name="at"/>.</summary>
    public void Captured(Position captured, DateTimeOffset at)
    {
        if (captured.IsNone || (_marks.Count > 0 && _marks[^1].Position == captured))
        {
            return;
        }

        _marks.Add((captured, at));
        if (_marks.Count > MaxMarks)
        {
            Coalesce();
        }
    }

    /// <summary>Forgets the marks the store has confirmed with <paramref name="confirmed"/>.</summary>
    public void Confirmed(Position confirmed)
    {
        if (confirmed.IsNone)
        {
            return;
        }

        // Marks are in capture order and generations only move forward: the marks before the
        // first one of the confirmed generation belong to older generations, which a snapshot of
        // this one supersedes. (Without any mark of this generation, nothing can be told apart:
        // keep them, which errs on the side of "behind".)
        int first = _marks.FindIndex(m => m.Position.Generation == confirmed.Generation);
        if (first < 0)
        {
            return;
        }

        int drop = first;
        while (drop < _marks.Count && _marks[drop].Position.Generation == confirmed.Generation && Covers(confirmed, _marks[drop].Position))
        {
            drop++;
        }

        _marks.RemoveRange(0, drop);
    }

    /// <summary>Once the replica confirmed all it knows to be captured: drops marks of any other generation.</summary>
    public void ForgetOtherGenerations(Position confirmed)
    {
        if (confirmed.IsNone)
        {
            _marks.Clear();
            return;
        }

        _marks.RemoveAll(m => m.Position.Generation != confirmed.Generation || Covers(confirmed, m.Position));
    }

    /// <summary>True when <paramref name="confirmed"/> is at or past <paramref name="p"/> (same generation).</summary>
    public static bool Covers(Position confirmed, Position p) =>
        !confirmed.IsNone && confirmed.Generation == p.Generation &&
        (confirmed.Index > p.Index || (confirmed.Index == p.Index && confirmed.Offset >= p.Offset));

    private void Coalesce()
    {
        // Merge pairs of one generation into (later position, earlier time).
        var merged = new List<(Position, DateTimeOffset)>(_marks.Count / 2 + 1);
        for (int i = 0; i < _marks.Count; i++)
        {
            if (i + 1 < _marks.Count && _marks[i].Position.Generation == _marks[i + 1].Position.Generation)
            {
                merged.Add((_marks[i + 1].Position, _marks[i].CapturedAt));
                i++;
            }
            else
            {
                merged.Add(_marks[i]);
            }
        }

        _marks.Clear();
        _marks.AddRange(merged);
    }
}

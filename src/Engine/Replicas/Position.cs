namespace SqliteReplica.Engine.Replicas;

/// <summary>
/// A point in a database's history: generation, WAL index within it, byte offset within that
/// index's WAL stream. Printed the way Litestream prints it: <c>gen/0000000a:4152</c>.
/// </summary>
public readonly record struct Position(string Generation, long Index, long Offset) : IComparable<Position>
{
    public static Position None => new(string.Empty, 0, 0);

    public bool IsNone => string.IsNullOrEmpty(Generation);

    /// <summary>Orders positions of the same generation; different generations compare by name only.</summary>
    public int CompareTo(Position other)
    {
        int c = string.CompareOrdinal(Generation, other.Generation);
        if (c != 0) return c;
        c = Index.CompareTo(other.Index);
        return c != 0 ? c : Offset.CompareTo(other.Offset);
    }

    public override string ToString() => IsNone ? "(none)" : $"{Generation}/{Index:x8}:{Offset}";
}

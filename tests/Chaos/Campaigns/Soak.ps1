# Campaign h: a soak. Mixed application traffic for a long time (30 min in Long mode) with short
# snapshot and retention intervals, to a file replica and to S3 (moto) at once: replicator memory,
# the local meta directory and the replicas must stay bounded; at the end the restore must equal
# the live database, and point-in-time restores at random times must be exact.

function Get-SoakRss {
    # Resident set size of one process in bytes, from /proc/<pid>/status ($null once it is gone).
    param([Parameter(Mandatory)][int]$ProcessId)
    try {
        foreach ($line in [System.IO.File]::ReadAllLines("/proc/$ProcessId/status")) {
            if ($line -match '^VmRSS:\s+(\d+)\s+kB') { return [long]$Matches[1] * 1024 }
        }
    }
    catch { }
    $null
}

function Get-SoakTreeSize {
    param([Parameter(Mandatory)][string]$Path)
    if (-not (Test-Path -LiteralPath $Path)) { return [pscustomobject]@{ Bytes = 0L; Files = 0 } }
    $files = @(Get-ChildItem -LiteralPath $Path -Recurse -File -Force -ErrorAction SilentlyContinue)
    [pscustomobject]@{ Bytes = [long](($files | Measure-Object -Property Length -Sum).Sum); Files = $files.Count }
}

function Get-SoakBucketListing {
    # Every object under a prefix, listed with plain unsigned ListObjectsV2 requests to moto (not
    # through the module, so the module does not judge itself): Key, Size, LastModified.
    param([Parameter(Mandatory)][string]$Endpoint, [Parameter(Mandatory)][string]$Bucket, [string]$Prefix = '')
    $objects = [System.Collections.Generic.List[object]]::new()
    $token = $null
    do {
        $uri = "$($Endpoint.TrimEnd('/'))/$Bucket`?list-type=2&max-keys=1000&prefix=$([uri]::EscapeDataString($Prefix))"
        if ($token) { $uri += "&continuation-token=$([uri]::EscapeDataString($token))" }
        $response = Invoke-WebRequest -Uri $uri -Method Get -TimeoutSec 30 -ErrorAction Stop
        [xml]$xml = $response.Content
        $ns = [System.Xml.XmlNamespaceManager]::new($xml.NameTable)
        $ns.AddNamespace('s', $xml.DocumentElement.NamespaceURI)
        foreach ($node in $xml.SelectNodes('//s:Contents', $ns)) {
            $objects.Add([pscustomobject]@{
                    Key          = $node.SelectSingleNode('s:Key', $ns).InnerText
                    Size         = [long]$node.SelectSingleNode('s:Size', $ns).InnerText
                    LastModified = [DateTimeOffset]::Parse($node.SelectSingleNode('s:LastModified', $ns).InnerText, [cultureinfo]::InvariantCulture)
                })
        }
        $truncated = $xml.SelectSingleNode('//s:IsTruncated', $ns)
        $next = $xml.SelectSingleNode('//s:NextContinuationToken', $ns)
        $token = if ($truncated -and $truncated.InnerText -eq 'true' -and $next) { $next.InnerText } else { $null }
    } while ($token)
    , $objects
}

function Read-SoakCommits {
    # The writer's 'commit <k> <start ms> <end ms>' lines: k -> start and end (unix ms).
    param([Parameter(Mandatory)][string]$Path)
    $commits = [System.Collections.Generic.List[object]]::new()
    $text = Read-ChaosText -Path $Path
    foreach ($m in [regex]::Matches($text, '(?m)^commit (\d+) (\d+) (\d+)\s*$')) {
        $commits.Add([pscustomobject]@{ K = [long]$m.Groups[1].Value; Start = [long]$m.Groups[2].Value; End = [long]$m.Groups[3].Value })
    }
    , $commits
}

function Invoke-SoakCampaign {
    param([Parameter(Mandatory)]$Result)
    # SQLITEREPLICA_SOAK_SECONDS overrides the length (e.g. a long soak inside a Quick campaign).
    $seconds = if ($env:SQLITEREPLICA_SOAK_SECONDS) { [int]$env:SQLITEREPLICA_SOAK_SECONDS } elseif ($Chaos.Quick) { 75 } else { 1800 }
    $short = $seconds -lt 600
    $s = if ($short) {
        @{ Snapshot = 10; Retention = 30; Check = 5; Checkpoint = 5; Sample = 3; IntervalMs = 20; Vacuum = 1200; Schema = 150 }
    }
    else {
        @{ Snapshot = 120; Retention = 360; Check = 30; Checkpoint = 30; Sample = 30; IntervalMs = 30; Vacuum = 8000; Schema = 1000 }
    }
    $writerSeed = (Get-ChaosRandom -Name 'Soak').Next(1, 1000000)
    $rng = Get-ChaosRandom -Name 'SoakTimes'
    $Result.Title = "h. Soak: $([Math]::Round($seconds / 60.0, 1)) min of mixed traffic with short snapshot and retention intervals$(if ($env:SQLITEREPLICA_SOAK_SECONDS) { ' (length from SQLITEREPLICA_SOAK_SECONDS)' })"
    $Result.Description = (
        "The test writer's 'soak' traffic (seed $writerSeed; each commit 1-6 inserts, updates and deletes of texts and blobs up to 200 KB, " +
        "a schema change every $($s.Schema) commits: tables created and dropped, a column added, an index; a VACUUM every $($s.Vacuum) commits; " +
        "a $($s.IntervalMs) ms pause between commits; t stays around 1200 rows) runs for $seconds s while one replicator (its own pwsh, -ConfigPath) " +
        "replicates the database to a file replica and to S3 (moto) with snapshot-interval $($s.Snapshot)s, retention $($s.Retention)s, " +
        "retention-check-interval $($s.Check)s, checkpoint-interval $($s.Checkpoint)s. Every $($s.Sample) s the campaign records the replicator's RSS " +
        '(/proc/<pid>/status), the meta directory, the file replica and the bucket (listed directly from moto). ' +
        'Bounded means: after the warm-up (retention + retention-check-interval + snapshot-interval + 5 s, when retention can first have deleted ' +
        'anything), the maximum of the second half of the remaining samples exceeds the first half''s maximum by at most 50% (plus 32 MiB for memory, 4 MiB for ' +
        'the meta directory, 1 MiB for the replicas), and no replica object is older than retention + retention-check-interval + snapshot-interval + ' +
        'checkpoint-interval + 15 s. At the end (writer stopped, SIGTERM) both replicas must restore to exactly the live database. ' +
        'Point-in-time restores (the oracle): the traffic is deterministic, so "init" + "soak --until k" rebuilds the exact state after commit k. ' +
        'For 5 random times T within the retained window, Restore-SqliteReplica -Timestamp T restores the file replica (whose object times are ' +
        'nanosecond mtimes; -Timestamp means upload time, as in Litestream); its soak_log says which commit k it holds. Exact means all of: (1) the ' +
        'restored database equals the replay of commits 1..k (no torn or mixed state), (2) commit k had begun by T (nothing from after T), (3) the ' +
        'restored position is at or past every position the replicator had logged as confirmed (store-acknowledged) for that replica by T ' +
        '(nothing the store had by T is missing).')

    $dir = Join-Path $Chaos.Scratch 'soak'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $db = Join-Path $dir 'app.db'
    $meta = Join-Path $dir '.app.db-litestream'
    $fileReplica = Join-Path $dir 'replica'
    $null = Invoke-Writer init --db $db
    $s3 = Get-ChaosS3
    $bucket = New-ChaosBucket -Name 'soak'
    $config = Join-Path $dir 'litestream.yml'
    $replicaSettings = @"
        sync-interval: 1s
        snapshot-interval: $($s.Snapshot)s
        retention: $($s.Retention)s
        retention-check-interval: $($s.Check)s
"@
    $yaml = @"
dbs:
  - path: '$($db.Replace("'", "''"))'
    monitor-interval: 200ms
    checkpoint-interval: $($s.Checkpoint)s
    replicas:
      - name: file
        path: '$($fileReplica.Replace("'", "''"))'
$replicaSettings
      - name: s3
        type: s3
        bucket: $bucket
        path: app.db
        endpoint: $($s3.Moto.Endpoint)
        region: us-east-1
$replicaSettings
"@
    [System.IO.File]::WriteAllText($config, $yaml)
    $fileSpec = [pscustomobject]@{ Kind = 'file'; Path = $fileReplica }
    $s3Spec = [pscustomobject]@{ Kind = 's3'; Url = "s3://$bucket/app.db"; Endpoint = $s3.Moto.Endpoint }

    $replicator = Start-ChaosReplicator -Parameters @{ ConfigPath = $config } -LogPath (Join-Path $dir 'replicator.log') | Register-ChaosChild
    # The replicator's own process (the group leader, not a wrapper).
    $rssPid = $replicator.Pgid
    $writerOut = Join-Path $dir 'writer.out'
    $writerArgs = @('--seed', $writerSeed, '--schema-every', $s.Schema)
    $writer = Start-Writer soak --db $db @writerArgs --interval-ms $s.IntervalMs --vacuum-every $s.Vacuum -StdoutPath $writerOut | Register-ChaosChild

    $samples = [System.Collections.Generic.List[object]]::new()
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    $runStart = [DateTimeOffset]::UtcNow
    $sample = {
        $rss = Get-SoakRss -ProcessId $rssPid
        $m = Get-SoakTreeSize -Path $meta
        $f = Get-SoakTreeSize -Path $fileReplica
        $b = $null
        try { $b = Get-SoakBucketListing -Endpoint $s3.Moto.Endpoint -Bucket $bucket } catch { }
        $commits = Read-SoakCommits -Path $writerOut
        $row = [pscustomobject][ordered]@{
            AtSeconds      = [Math]::Round($clock.Elapsed.TotalSeconds, 0)
            RssMiB         = if ($null -ne $rss) { [Math]::Round($rss / 1MB, 1) } else { $null }
            RssBytes       = $rss
            MetaBytes      = $m.Bytes
            DbBytes        = if (Test-Path -LiteralPath $db) { (Get-Item -LiteralPath $db).Length } else { 0 }
            FileReplicaBytes = $f.Bytes
            FileReplicaObjects = $f.Files
            BucketBytes    = if ($b) { [long](($b | Measure-Object -Property Size -Sum).Sum) } else { $null }
            BucketObjects  = if ($b) { $b.Count } else { $null }
            Commits        = if ($commits.Count) { $commits[-1].K } else { 0 }
        }
        $samples.Add($row)
        $row
    }

    try {
        $nextSample = 0
        while ($clock.Elapsed.TotalSeconds -lt $seconds) {
            if ($clock.Elapsed.TotalSeconds -ge $nextSample) {
                $row = & $sample
                if ($samples.Count % [Math]::Max(1, [int](60 / $s.Sample)) -eq 1) {
                    Write-ChaosLine 'Soak' ("{0,5} s: rss {1} MiB, meta {2:N0} B, db {3:N0} B, file replica {4:N0} B ({5} objects), bucket {6:N0} B ({7} objects), {8} commits" -f $row.AtSeconds, $row.RssMiB, $row.MetaBytes, $row.DbBytes, $row.FileReplicaBytes, $row.FileReplicaObjects, $row.BucketBytes, $row.BucketObjects, $row.Commits)
                }
                $nextSample += $s.Sample
            }
            if ($replicator.HasExited) { throw "The replicator exited during the soak (code $($replicator.ExitCode)): $(Get-LogTail -Path $replicator.LogPath -Lines 8)" }
            if ($writer.HasExited) { throw "The writer exited during the soak (code $($writer.ExitCode)): $(Read-ChaosText -Path "$writerOut.err")" }
            Start-Sleep -Milliseconds 500
        }
        $endOfTraffic = [DateTimeOffset]::UtcNow
        $last = & $sample
        $null = $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30
        $commits = Read-SoakCommits -Path $writerOut
        $lastK = if ($commits.Count) { $commits[-1].K } else { 0 }
        Start-Sleep -Seconds 3
        $rssBeforeStop = Get-SoakRss -ProcessId $rssPid
        $code = $replicator | Stop-ChaosReplicator -TimeoutSeconds 60
        $live = Get-DbDump -Path $db
        $errors = @(Get-ChaosLogLine -LogPath $replicator.LogPath | Where-Object { $_.Kind -in 'ERROR', 'ERRORID', 'WARNING' })

        # --- Memory, meta directory, replicas ---
        $warm = [Math]::Max(10, $seconds * 0.1)
        $rssSamples = @($samples | Where-Object { $null -ne $_.RssBytes -and $_.AtSeconds -ge $warm })
        $rssStart = if ($rssSamples.Count) { $rssSamples[0].RssBytes } else { $null }
        $rssEnd = if ($rssSamples.Count) { $rssSamples[-1].RssBytes } else { $null }
        $rssMax = ($rssSamples | Measure-Object -Property RssBytes -Maximum).Maximum
        # Steady state: from the moment retention can first have deleted anything (every replica
        # object then is at most one retention window old); before it, the replicas only fill up.
        $steady = $s.Retention + $s.Check + $s.Snapshot + 5
        $half = $steady + ($seconds - $steady) / 2
        $firstHalf = @($samples | Where-Object { $_.AtSeconds -ge $steady -and $_.AtSeconds -lt $half })
        $secondHalf = @($samples | Where-Object { $_.AtSeconds -ge $half })
        $bounded = {
            param([string]$Property, [double]$Slack)
            $a = ($firstHalf | Where-Object { $null -ne $_.$Property } | Measure-Object -Property $Property -Maximum).Maximum
            $b = ($secondHalf | Where-Object { $null -ne $_.$Property } | Measure-Object -Property $Property -Maximum).Maximum
            [pscustomobject]@{ First = [long]$a; Second = [long]$b; Met = ($null -ne $a -and $null -ne $b -and $b -le 1.5 * $a + $Slack) }
        }
        $rssBound = & $bounded 'RssBytes' 32MB
        $metaBound = & $bounded 'MetaBytes' 4MB
        $fileBound = & $bounded 'FileReplicaBytes' 1MB
        $bucketBound = & $bounded 'BucketBytes' 1MB
        $flat = $null -ne $rssStart -and $null -ne $rssEnd -and $rssEnd -le 1.5 * $rssStart + 32MB
        $Result.Figures.Add((New-ChaosFigure -Name 'Traffic' -Value ("{0} commits in {1} s" -f $lastK, $seconds) -Note ("{0:F1} commits/s; {1} VACUUM(s), {2} schema change(s); live database {3:N0} bytes, t {4} rows, {5} tables; writer seed {6}" -f ($lastK / [Math]::Max(1, $seconds)), @(Select-String -LiteralPath $writerOut -Pattern '^vacuum ').Count, [Math]::Floor($lastK / $s.Schema), (Get-Item -LiteralPath $db).Length, $live.tables.t, @($live.tables.PSObject.Properties).Count, $writerSeed)))
        $Result.Figures.Add((New-ChaosFigure -Name 'Replicator RSS: start (after warm-up), end' -Value $(if ($null -ne $rssStart) { "{0:F1} MiB -> {1:F1} MiB" -f ($rssStart / 1MB), ($rssEnd / 1MB) } else { 'not measured' }) -Goal 'end <= 1.5 x start + 32 MiB' -Met $flat -Note ("max {0:F1} MiB; max first half {1:F1} MiB, second half {2:F1} MiB; {3:F1} MiB after the writer stopped" -f ($rssMax / 1MB), ($rssBound.First / 1MB), ($rssBound.Second / 1MB), ($rssBeforeStop / 1MB))))
        $Result.Figures.Add((New-ChaosFigure -Name 'Replicator memory bounded (max second vs first half of the steady state)' -Value ("{0:F1} MiB vs {1:F1} MiB" -f ($rssBound.Second / 1MB), ($rssBound.First / 1MB)) -Goal '<= 1.5 x + 32 MiB' -Met $rssBound.Met))
        $Result.Figures.Add((New-ChaosFigure -Name 'Meta directory bounded (max second vs first half of the steady state)' -Value ("{0:N0} vs {1:N0} bytes" -f $metaBound.Second, $metaBound.First) -Goal '<= 1.5 x + 4 MiB' -Met $metaBound.Met -Note ("at the end {0:N0} bytes" -f $last.MetaBytes)))
        $Result.Figures.Add((New-ChaosFigure -Name 'File replica bounded by retention (max second vs first half of the steady state)' -Value ("{0:N0} vs {1:N0} bytes" -f $fileBound.Second, $fileBound.First) -Goal '<= 1.5 x + 1 MiB' -Met $fileBound.Met -Note ("at the end {0:N0} bytes in {1} objects" -f $last.FileReplicaBytes, $last.FileReplicaObjects)))
        $Result.Figures.Add((New-ChaosFigure -Name 'Bucket bounded by retention (max second vs first half of the steady state)' -Value ("{0:N0} vs {1:N0} bytes" -f $bucketBound.Second, $bucketBound.First) -Goal '<= 1.5 x + 1 MiB' -Met $bucketBound.Met -Note ("at the end {0:N0} bytes in {1} objects" -f $last.BucketBytes, $last.BucketObjects)))

        # Object ages at the end of the traffic (retention ran all along).
        $ageLimit = $s.Retention + $s.Check + $s.Snapshot + $s.Checkpoint + 15
        $bucketObjects = Get-SoakBucketListing -Endpoint $s3.Moto.Endpoint -Bucket $bucket
        $oldestBucket = ($bucketObjects | Where-Object { $_.Key -match '\.lz4$' } | Sort-Object LastModified | Select-Object -First 1)
        $fileObjects = @(Get-ChildItem -LiteralPath (Join-Path $fileReplica 'generations') -Recurse -File -Filter '*.lz4' -ErrorAction SilentlyContinue)
        $oldestFile = $fileObjects | Sort-Object LastWriteTimeUtc | Select-Object -First 1
        $ageBucket = if ($oldestBucket) { ($endOfTraffic - $oldestBucket.LastModified).TotalSeconds } else { $null }
        $ageFile = if ($oldestFile) { ($endOfTraffic - [DateTimeOffset]$oldestFile.LastWriteTimeUtc).TotalSeconds } else { $null }
        $snapsFile = @($fileObjects | Where-Object Name -like '*.snapshot.lz4').Count
        $snapsBucket = @($bucketObjects | Where-Object Key -like '*.snapshot.lz4').Count
        $gensFile = @(Get-ChildItem -LiteralPath (Join-Path $fileReplica 'generations') -Directory -ErrorAction SilentlyContinue).Count
        $agesMet = $null -ne $ageBucket -and $null -ne $ageFile -and $ageBucket -le $ageLimit -and $ageFile -le $ageLimit
        $Result.Figures.Add((New-ChaosFigure -Name 'Oldest replica object when the traffic stopped (file, S3)' -Value ("{0:F0} s, {1:F0} s" -f $ageFile, $ageBucket) -Goal "<= $ageLimit s" -Met $agesMet -Note ("snapshots kept: file {0}, S3 {1}; generations in the file replica: {2}" -f $snapsFile, $snapsBucket, $gensFile)))

        # --- The end: both replicas restore to the live database ---
        foreach ($spec in $fileSpec, $s3Spec) {
            $r = Invoke-ChaosRestore -Replica $spec -Parent $dir
            $equal = $r.Ok -and $r.Dump.digest -eq $live.digest -and $r.Dump.integrity -eq 'ok'
            $Result.Figures.Add((New-ChaosFigure -Name "Restore at the end equals the live database ($($spec.Kind))" -Value $(if ($equal) { 'yes' } else { 'no' }) -Goal 'yes' -Met $equal -Note $(if ($r.Ok) { "restored $($r.Result.Position) in $([Math]::Round($r.Seconds, 1)) s; soak_log $($r.Dump.tables.soak_log) of $lastK commits; replicator exit $code" } else { "$($r.ErrorId): $(Limit-Text $r.Message 200)" })))
            if (-not $equal) { $Result.Findings.Add((New-ChaosFinding -Campaign 'Soak' -Title "The final restore from the $($spec.Kind) replica differs from the live database" -Evidence $(if ($r.Ok) { "live $($live.digest) soak_log $($live.tables.soak_log); restored $($r.Dump.digest) soak_log $($r.Dump.tables.soak_log) at $($r.Result.Position)" } else { "$($r.ErrorId): $($r.Message)" }))) }
            Remove-RestoreTarget $r
        }

        # --- Point-in-time restores ---
        $byK = @{}
        foreach ($c in $commits) { $byK[$c.K] = $c }
        $confirmed = @(foreach ($record in (Get-ChaosLogLine -LogPath $replicator.LogPath)) {
                if ($record.Kind -ne 'VERBOSE') { continue }
                $m = [regex]::Match($record.Text, 'replica file: (?:wal segment written .*confirmed=|snapshot written position=)(?<pos>[0-9a-f]{16}/[0-9a-f]{8}:\d+)')
                if ($m.Success) { [pscustomobject]@{ At = $record.At; Position = ConvertTo-ChaosPosition $m.Groups['pos'].Value } }
            })
        $snapshots = @(Get-ReplicaSnapshot -ReplicaPath $fileReplica)
        $windowStart = ($snapshots | ForEach-Object { ([DateTimeOffset]$_.CreatedAt).ToUnixTimeMilliseconds() } | Measure-Object -Minimum).Minimum + 500
        $windowEnd = $commits[-1].End
        $times = @(for ($i = 0; $i -lt 5; $i++) { [long]($windowStart + $rng.NextDouble() * ($windowEnd - $windowStart)) }) | Sort-Object
        $pitr = [System.Collections.Generic.List[object]]::new()
        foreach ($t in $times) {
            $at = [DateTimeOffset]::FromUnixTimeMilliseconds($t)
            $r = Invoke-ChaosRestore -Replica $fileSpec -Parent $dir -Extra @{ Timestamp = $at }
            $entry = [pscustomobject]@{ T = $t; At = $at; Restore = $r; K = $null; Position = $null; Problems = [System.Collections.Generic.List[string]]::new() }
            if (-not $r.Ok) { $entry.Problems.Add("restore failed: $($r.ErrorId): $(Limit-Text $r.Message 200)") }
            else {
                $entry.K = [long]$r.Dump.tables.soak_log
                $entry.Position = ConvertTo-ChaosPosition ([string]$r.Result.Position)
                if ($r.Dump.integrity -ne 'ok') { $entry.Problems.Add("integrity_check: $($r.Dump.integrity)") }
                $commit = $byK[$entry.K]
                if ($entry.K -gt 0 -and -not $commit) { $entry.Problems.Add("commit $($entry.K) is not in the writer's output") }
                elseif ($commit -and $commit.Start -gt $t) { $entry.Problems.Add("holds commit $($entry.K), which began $($commit.Start - $t) ms after T") }
                $due = @($confirmed | Where-Object { $_.At -le $t -and $_.Position.Generation -eq $entry.Position.Generation }) | Select-Object -Last 1
                if ($due -and (Compare-ChaosPosition $entry.Position $due.Position) -lt 0) { $entry.Problems.Add("restored position $($entry.Position.Text) is before $($due.Position.Text), confirmed at $([DateTimeOffset]::FromUnixTimeMilliseconds($due.At).ToString('HH:mm:ss.fff')) <= T") }
                $entry | Add-Member -NotePropertyName Due -NotePropertyValue $due
            }
            $pitr.Add($entry)
        }
        # The replay: one fresh database, advanced commit by commit to each k in turn.
        $replayDb = Join-Path $dir 'replay.db'
        $null = Invoke-Writer init --db $replayDb
        $replayed = @{}
        $targets = @(@($pitr | Where-Object { $null -ne $_.K } | ForEach-Object { $_.K }) + @($lastK)) | Sort-Object -Unique
        $replayWatch = [System.Diagnostics.Stopwatch]::StartNew()
        foreach ($k in $targets) {
            if ($k -gt 0) { $null = Invoke-Writer soak --db $replayDb @writerArgs --until $k --fast -TimeoutSeconds 1800 }
            $replayed[$k] = (Get-DbDump -Path $replayDb).digest
        }
        $oracleSound = $replayed[$lastK] -eq $live.digest
        $Result.Figures.Add((New-ChaosFigure -Name 'Replay oracle reproduces the live database (replay of every commit equals it)' -Value $(if ($oracleSound) { 'yes' } else { 'no' }) -Goal 'yes' -Met $oracleSound -Note ("{0} replays in {1:F0} s" -f $targets.Count, $replayWatch.Elapsed.TotalSeconds)))
        $i = 0
        foreach ($entry in $pitr) {
            $i++
            if ($null -ne $entry.K -and $entry.Restore.Dump.digest -ne $replayed[$entry.K]) { $entry.Problems.Add("content differs from the replay of commits 1..$($entry.K)") }
            $ok = $entry.Problems.Count -eq 0
            $lag = if ($null -ne $entry.K -and $byK[$entry.K]) { $entry.T - $byK[$entry.K].End } else { $null }
            $newest = @($commits | Where-Object { $_.End -le $entry.T }) | Select-Object -Last 1
            $Result.Figures.Add((New-ChaosFigure -Name "Point-in-time restore $i at T = $($entry.At.ToString('HH:mm:ss.fff'))" -Value $(if ($entry.Restore.Ok) { "commit $($entry.K) at $($entry.Position.Text)" } else { 'failed' }) -Goal 'exact' -Met $ok -Note $(if ($ok) { "equals the replay of commits 1..$($entry.K); commit $($entry.K) ended $lag ms before T (the newest commit ended by T was $(if ($newest) { $newest.K } else { 'none' })); at or past the position confirmed by T ($(if ($entry.Due) { $entry.Due.Position.Text } else { 'none yet' }))" } else { $entry.Problems -join '; ' })))
            if (-not $ok) { $Result.Findings.Add((New-ChaosFinding -Campaign 'Soak' -Title "Point-in-time restore at $($entry.At.ToString('O')) is not exact" -Evidence ($entry.Problems -join '; '))) }
            Remove-RestoreTarget $entry.Restore
        }
        $Result.Figures.Add((New-ChaosFigure -Name 'Replicator errors and warnings in the log' -Value $errors.Count -Note (Limit-Text (($errors | Select-Object -First 3 | ForEach-Object { "$($_.Kind) $($_.Text)" }) -join ' | ') 300)))
        if (-not $flat -or -not $rssBound.Met) { $Result.Findings.Add((New-ChaosFinding -Campaign 'Soak' -Title 'Replicator memory grew during the soak' -Evidence ("RSS start {0:F1} MiB, end {1:F1} MiB, max {2:F1} MiB" -f ($rssStart / 1MB), ($rssEnd / 1MB), ($rssMax / 1MB)))) }
        if (-not $metaBound.Met) { $Result.Findings.Add((New-ChaosFinding -Campaign 'Soak' -Title 'The meta directory grew during the soak' -Evidence ("max first half {0:N0} bytes, second half {1:N0} bytes" -f $metaBound.First, $metaBound.Second))) }
        if (-not $fileBound.Met -or -not $bucketBound.Met -or -not $agesMet) { $Result.Findings.Add((New-ChaosFinding -Campaign 'Soak' -Title 'A replica grew past what retention allows' -Evidence ("file {0:N0} -> {1:N0} bytes, bucket {2:N0} -> {3:N0} bytes; oldest objects {4:F0} s and {5:F0} s old (limit {6} s)" -f $fileBound.First, $fileBound.Second, $bucketBound.First, $bucketBound.Second, $ageFile, $ageBucket, $ageLimit))) }
    }
    finally {
        $Result.RowColumns = @('AtSeconds', 'RssMiB', 'MetaBytes', 'DbBytes', 'FileReplicaBytes', 'FileReplicaObjects', 'BucketBytes', 'BucketObjects', 'Commits')
        foreach ($row in $samples) { $Result.Rows.Add($row) }
    }
}

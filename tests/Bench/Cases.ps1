# The benchmark cases, dot-sourced by Invoke-Bench.ps1 (which defines $Settings, $Scratch,
# $WriterPath, $Litestream, $Pwsh and the small helpers used here). Each returns one ordered
# dictionary of raw figures; Report.ps1 turns them into docs/benchmarks.md.

#region Restore

function New-RestoreHistory {
    # A database of RestoreRows rows (~720 bytes each: half compressible text, half random bytes),
    # then Litestream itself replicating it while RestoreTx transactions each rewrite a tenth of
    # the rows: WAL history about as large as the database, across several WAL indexes.
    param([Parameter(Mandatory)][string]$Dir)
    $db = Join-Path $Dir 'src/big.db'
    $replicaRoot = Join-Path $Dir 'replica'
    $replica = Join-Path $replicaRoot 'big.db'
    $null = New-Item -ItemType Directory -Path (Split-Path $db) -Force
    $rows = $Settings.RestoreRows
    $sql = "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE big(id INTEGER PRIMARY KEY, v TEXT, b BLOB); " +
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < $rows) " +
        "INSERT INTO big SELECT i, 'row ' || i || ' ' || hex(randomblob(200)), randomblob(300) FROM c;"
    $r = Measure-BenchCommand -FilePath 'sqlite3' -ArgumentList @($db, $sql)
    if ($r.ExitCode -ne 0) { throw "sqlite3 could not create the database: $($r.Output)" }
    $dbMB = Get-FileSizeMB $db
    Write-BenchLine 'Restore' "database of $dbMB MB made in $([math]::Round($r.Seconds, 1)) s; Litestream replicates it while $($Settings.RestoreTx) transactions rewrite it"

    $config = New-BenchConfig -Path (Join-Path $Dir 'make.yml') -Database $db -ReplicaRoot $replicaRoot
    $ls = Start-BenchReplicator -Tool litestream -ConfigPath $config -LogPath (Join-Path $Dir 'make-litestream.log')
    Wait-BenchSnapshot -ReplicaRoot $replicaRoot -Process $ls -TimeoutSeconds 600
    $step = [long][math]::Ceiling($rows / $Settings.RestoreTx)
    $settle = {
        # Until Litestream has shipped it all: the replica stops growing and the WAL stops shrinking.
        $last = -1; $stable = 0
        while ($stable -lt 3) {
            Start-Sleep -Milliseconds 700
            $now = (Get-DirectorySizeMB -Path $replica) + (Get-FileSizeMB "$db-wal") / 1000
            if ($now -eq $last) { $stable++ } else { $stable = 0; $last = $now }
            if ($ls.HasExited) { throw "Litestream exited while making the history: $(Get-LogTail -Path $ls.LogPath -Lines 10)" }
        }
    }
    for ($k = 0; $k -lt $Settings.RestoreTx; $k++) {
        $from = $k * $step + 1
        $to = [math]::Min($rows, ($k + 1) * $step)
        $u = Measure-BenchCommand -FilePath 'sqlite3' -ArgumentList @('-cmd', '.timeout 30000', $db,
            "UPDATE big SET v = 'row ' || id || ' ' || hex(randomblob(200)), b = randomblob(300) WHERE id BETWEEN $from AND $to;")
        if ($u.ExitCode -ne 0) { throw "sqlite3 update failed: $($u.Output)" }
        & $settle
    }
    & $settle
    $null = $ls | Stop-BenchProcess
    # The source's content hash, to check every restore against.
    $hash = (Measure-BenchCommand -FilePath 'sqlite3' -ArgumentList @('-readonly', $db, '.sha3sum')).Output.Trim()

    $snapshots = @([System.IO.Directory]::GetFiles($replica, '*.snapshot.lz4', 'AllDirectories'))
    $segments = @([System.IO.Directory]::GetFiles($replica, '*.wal.lz4', 'AllDirectories') | Sort-Object)
    if ($snapshots.Count -ne 1) { throw "Expected one snapshot in the made replica, found $($snapshots.Count)." }
    # Segment names are <index>_<offset>.wal.lz4 (Litestream v0.3.13; older layouts: wal/<index>/<offset>.wal.lz4).
    $indexes = @($segments | ForEach-Object { $n = [System.IO.Path]::GetFileName($_); if ($n.Contains('_')) { $n.Split('_')[0] } else { Split-Path (Split-Path $_) -Leaf } } | Sort-Object -Unique)
    [pscustomobject][ordered]@{
        Database         = $db
        Replica          = $replica
        Snapshot         = $snapshots[0]
        Segments         = $segments
        Hash             = $hash
        DatabaseMB       = $dbMB
        SnapshotStoredMB = Get-FileSizeMB $snapshots[0]
        WalStoredMB      = [math]::Round(($segments | ForEach-Object { ([System.IO.FileInfo]::new($_)).Length } | Measure-Object -Sum).Sum / 1MB, 1)
        WalIndexes       = $indexes.Count
        WalSegments      = $segments.Count
    }
}

function Copy-ReplicaToS3 {
    # Every object of the local replica to moto under <Prefix>/, same relative keys (one curl).
    param([Parameter(Mandatory)][string]$Replica, [Parameter(Mandatory)][string]$Endpoint, [Parameter(Mandatory)][string]$Bucket, [Parameter(Mandatory)][string]$Prefix, [Parameter(Mandatory)][string]$Dir)
    $lines = foreach ($file in [System.IO.Directory]::GetFiles($Replica, '*', 'AllDirectories')) {
        $key = [System.IO.Path]::GetRelativePath($Replica, $file).Replace('\', '/')
        "upload-file = `"$file`""
        "url = `"$Endpoint/$Bucket/$Prefix/$key`""
        'output = "/dev/null"'
    }
    $cfg = Join-Path $Dir 'upload.curl'
    [System.IO.File]::WriteAllLines($cfg, [string[]]$lines)
    $r = Measure-BenchCommand -FilePath 'curl' -ArgumentList @('-sS', '--fail', '--parallel', '--parallel-max', '4', '-K', $cfg)
    if ($r.ExitCode -ne 0) { throw "Uploading the replica to moto failed: $($r.Output)" }
}

function Invoke-RestoreRun {
    # One restore by one tool (or the floor); returns wall and inside seconds, checked against the source hash.
    param([string]$Tool, [string]$Config, [object]$History, [string]$Out, [string]$Kind, [string]$S3Base, [bool]$Check)
    Remove-Item -LiteralPath $Out, "$Out-wal", "$Out-shm" -Force -ErrorAction SilentlyContinue
    # Each run writes about twice the database; the kernel writes those pages back later. A sync
    # first, so that no run pays for the dirty pages the one before it left.
    $null = Measure-BenchCommand -FilePath 'sync' -ArgumentList @()
    switch ($Tool) {
        'litestream' {
            $r = Measure-BenchCommand -FilePath $Litestream -ArgumentList @('restore', '-config', $Config, '-o', $Out, $History.Database)
            $inside = $r.Seconds
        }
        'ours' {
            $script = Join-Path (Split-Path $Out) 'restore-ours.ps1'
            $q = { param($s) "'" + $s.Replace("'", "''") + "'" }
            [System.IO.File]::WriteAllText($script, @"
`$ProgressPreference = 'SilentlyContinue'
Import-Module -Name $(& $q $env:SQLITEREPLICA_MODULE) -ErrorAction Stop
`$w = [System.Diagnostics.Stopwatch]::StartNew()
`$null = Restore-SqliteReplica -ConfigPath $(& $q $Config) -DatabasePath $(& $q $History.Database) -OutputPath $(& $q $Out) -ErrorAction Stop
'INSIDE ' + `$w.Elapsed.TotalSeconds.ToString([cultureinfo]::InvariantCulture)
"@)
            $r = Measure-BenchCommand -FilePath $Pwsh.FilePath -ArgumentList (@($Pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $script))
            $m = [regex]::Match($r.Output, 'INSIDE ([0-9.]+)')
            $inside = if ($m.Success) { [double]$m.Groups[1].Value } else { $null }
        }
        'floor' {
            $list = Join-Path (Split-Path $Out) 'segments.txt'
            if ($Kind -eq 'file') {
                [System.IO.File]::WriteAllLines($list, [string[]]$History.Segments)
                $r = Measure-BenchCommand -FilePath '/bin/sh' -ArgumentList @('-c', 'lz4 -d -q -f "$1" "$2" && sync "$2" && xargs -a "$3" cat > /dev/null', 'sh', $History.Snapshot, $Out, $list)
            }
            else {
                $lines = foreach ($s in $History.Segments) { "url = `"$S3Base/$([System.IO.Path]::GetRelativePath($History.Replica, $s))`""; 'output = "/dev/null"' }
                [System.IO.File]::WriteAllLines($list, [string[]]$lines)
                $snapUrl = "$S3Base/$([System.IO.Path]::GetRelativePath($History.Replica, $History.Snapshot))"
                # Signed GETs (moto refuses anonymous ones), as any S3 client sends them.
                $sign = "--aws-sigv4 aws:amz:us-east-1:s3 -u $($env:LITESTREAM_ACCESS_KEY_ID):$($env:LITESTREAM_SECRET_ACCESS_KEY)"
                $r = Measure-BenchCommand -FilePath '/bin/sh' -ArgumentList @('-c', "curl -sS --fail $sign `"`$1`" | lz4 -d -q -f - `"`$2`" && sync `"`$2`" && curl -sS --fail $sign --parallel --parallel-max 8 -K `"`$3`"", 'sh', $snapUrl, $Out, $list)
            }
            $inside = $r.Seconds
            $Check = $false
        }
    }
    if ($r.ExitCode -ne 0) { throw "$Tool restore ($Kind) failed (exit $($r.ExitCode)): $($r.Output)" }
    $ok = $null
    if ($Check) {
        $hash = (Measure-BenchCommand -FilePath 'sqlite3' -ArgumentList @('-readonly', $Out, '.sha3sum')).Output.Trim()
        $ok = $hash -eq $History.Hash
        if (-not $ok) { throw "$Tool restored ($Kind) a database that differs from the source." }
    }
    Remove-Item -LiteralPath $Out, "$Out-wal", "$Out-shm" -Force -ErrorAction SilentlyContinue
    [pscustomobject][ordered]@{ Tool = $Tool; Kind = $Kind; WallSeconds = [math]::Round($r.Seconds, 3); InsideSeconds = $(if ($null -ne $inside) { [math]::Round($inside, 3) } else { $null }); CpuSeconds = $(if ($r.CpuSeconds) { [math]::Round($r.CpuSeconds, 2) } else { $null }); Verified = $ok }
}

function Invoke-RestoreCase {
    $dir = New-CaseDirectory 'restore'
    $history = New-RestoreHistory -Dir $dir
    Write-BenchLine 'Restore' ("replica: snapshot {0} MB stored (database {1} MB), WAL {2} MB stored in {3} segments over {4} indexes" -f $history.SnapshotStoredMB, $history.DatabaseMB, $history.WalStoredMB, $history.WalSegments, $history.WalIndexes)
    $kinds = [System.Collections.Generic.List[object]]::new()
    $kinds.Add([pscustomobject]@{ Kind = 'file'; Config = (New-BenchConfig -Path (Join-Path $dir 'file.yml') -Database $history.Database -ReplicaRoot (Split-Path $history.Replica)); S3Base = $null })
    if ($Settings.RestoreS3) {
        $moto = Start-MotoServer -LogPath (Join-Path $dir 'moto.log')
        $bucket = New-S3Bucket -Endpoint $moto.Endpoint -Name 'bench-restore'
        Copy-ReplicaToS3 -Replica $history.Replica -Endpoint $moto.Endpoint -Bucket $bucket -Prefix 'big.db' -Dir $dir
        $kinds.Add([pscustomobject]@{ Kind = 'moto'; Config = (New-BenchConfig -Path (Join-Path $dir 's3.yml') -Database $history.Database -Endpoint $moto.Endpoint -Bucket $bucket); S3Base = "$($moto.Endpoint)/$bucket/big.db" })
    }
    $outDir = Join-Path $dir 'out'
    $null = New-Item -ItemType Directory -Path $outDir -Force
    $runs = [System.Collections.Generic.List[object]]::new()
    # Round -1 is a warm-up, checked against the source and not counted: the first restore after
    # the history was made paid for the machine settling (page cache, writeback) whichever tool ran it.
    for ($round = -1; $round -lt $Settings.RestoreRounds; $round++) {
        foreach ($k in $kinds) {
            foreach ($tool in (@(Get-ToolOrder ([math]::Max(0, $round))) + 'floor')) {
                $run = Invoke-RestoreRun -Tool $tool -Config $k.Config -History $history -Out (Join-Path $outDir 'restored.db') -Kind $k.Kind -S3Base $k.S3Base -Check ($round -eq -1)
                $run | Add-Member -NotePropertyName Round -NotePropertyValue $round
                if ($round -ge 0) { $runs.Add($run) }
                Write-BenchLine 'Restore' ("round {0} {1,-5} {2,-10} wall {3:N2} s, inside {4:N2} s{5}" -f $round, $k.Kind, $tool, $run.WallSeconds, $run.InsideSeconds, $(if ($round -lt 0) { ' (warm-up, not counted)' } else { '' }))
            }
        }
    }
    $summary = foreach ($k in $kinds) {
        $pick = { param($tool, $field) Get-BenchStat -Values @($runs | Where-Object { $_.Kind -eq $k.Kind -and $_.Tool -eq $tool } | ForEach-Object $field) }
        $o = [ordered]@{
            Kind = $k.Kind
            OursWall = & $pick 'ours' 'WallSeconds'; OursInside = & $pick 'ours' 'InsideSeconds'; OursCpu = & $pick 'ours' 'CpuSeconds'
            LitestreamWall = & $pick 'litestream' 'WallSeconds'; LitestreamCpu = & $pick 'litestream' 'CpuSeconds'
            Floor = & $pick 'floor' 'WallSeconds'
        }
        $o.RatioWallToLitestream = [math]::Round($o.OursWall.Median / $o.LitestreamWall.Median, 2)
        $o.RatioInsideToLitestream = [math]::Round($o.OursInside.Median / $o.LitestreamWall.Median, 2)
        $o.RatioInsideToFloor = [math]::Round($o.OursInside.Median / $o.Floor.Median, 2)
        $o.RatioWallToFloor = [math]::Round($o.OursWall.Median / $o.Floor.Median, 2)
        $o.LitestreamRatioToFloor = [math]::Round($o.LitestreamWall.Median / $o.Floor.Median, 2)
        [pscustomobject]$o
    }
    [ordered]@{
        History = $history | Select-Object -Property * -ExcludeProperty Segments, Database, Replica, Snapshot, Hash
        Runs    = $runs
        Summary = @($summary)
    }
}

function Invoke-FarRestoreCase {
    # Restore of a trickle's history from a store far away. Litestream makes the replica in moto:
    # 20 small commits a second for FarSeconds, a segment every 100 ms and a WAL index every 10 s
    # (a day at the 1 s default, scaled down), so the history is many small segments in several
    # indexes. Both tools then restore it through the test proxy, which holds every GET for
    # FarLatencyMs before forwarding it (a store one round trip away, like R2 from a VM
    # elsewhere). Every restore is checked against the source's hash.
    $dir = New-CaseDirectory 'far-restore'
    $moto = Start-MotoServer -LogPath (Join-Path $dir 'moto.log')
    $bucket = New-S3Bucket -Endpoint $moto.Endpoint -Name 'bench-far'
    $db = Join-Path $dir 'src/app.db'
    $null = New-Item -ItemType Directory -Path (Split-Path $db) -Force
    $null = Invoke-Writer init --db $db
    $make = Join-Path $dir 'make.yml'
    [System.IO.File]::WriteAllLines($make, [string[]]@(
            'dbs:', "  - path: '$db'", '    checkpoint-interval: 10s', '    monitor-interval: 100ms', '    replicas:', '      - type: s3', "        bucket: $bucket", '        path: app.db',
            "        endpoint: $($moto.Endpoint)", '        region: us-east-1', '        force-path-style: true', '        sync-interval: 100ms'))
    $ls = Start-BenchReplicator -Tool litestream -ConfigPath $make -LogPath (Join-Path $dir 'make-litestream.log')
    $writer = Start-Writer -Database $db -LogPath (Join-Path $dir 'writer.log') -Arguments @('--interval-ms', '50', '--count', '0', '--blob-bytes', '200')
    Start-Sleep -Seconds $Settings.FarSeconds
    $null = $writer | Stop-TestProcess -Signal TERM
    # Litestream's last segment goes at its next 100 ms tick; its SIGTERM does not wait for it.
    Start-Sleep -Seconds 3
    $null = $ls | Stop-BenchProcess
    $hash = (Measure-BenchCommand -FilePath 'sqlite3' -ArgumentList @('-readonly', $db, '.sha3sum')).Output.Trim()

    $proxy = Start-S3Proxy -Upstream $moto.Endpoint -Http -LogPath (Join-Path $dir 's3proxy.log')
    $config = New-BenchConfig -Path (Join-Path $dir 'far.yml') -Database $db -Endpoint $proxy.HttpEndpoint -Bucket $bucket
    # What the replica holds, listed by our module (no latency yet).
    $q = { param($s) "'" + $s.Replace("'", "''") + "'" }
    $listing = Measure-BenchCommand -FilePath $Pwsh.FilePath -ArgumentList (@($Pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-Command',
            "Import-Module $(& $q $env:SQLITEREPLICA_MODULE); `$s = @(Get-ReplicaWalSegment -ConfigPath $(& $q $config) -DatabasePath $(& $q $db)); 'SEGMENTS ' + `$s.Count + ' ' + @(`$s.Index | Sort-Object -Unique).Count + ' ' + (`$s | Measure-Object -Property Size -Sum).Sum"))
    $m = [regex]::Match($listing.Output, 'SEGMENTS (\d+) (\d+) (\d+)')
    if (-not $m.Success) { throw "Listing the replica failed: $($listing.Output)" }
    $history = [pscustomobject]@{ Database = $db; Hash = $hash }
    Write-BenchLine 'FarRestore' ("replica: {0} segments in {1} WAL indexes ({2} KB stored) after {3} s of writes; every GET held {4} ms" -f $m.Groups[1].Value, $m.Groups[2].Value, [math]::Round([long]$m.Groups[3].Value / 1KB), $Settings.FarSeconds, $Settings.FarLatencyMs)
    $null = Set-S3Fault -Proxy $proxy -Kind stall -Seconds ($Settings.FarLatencyMs / 1000) -Count -1 -Match GET

    $outDir = Join-Path $dir 'out'
    $null = New-Item -ItemType Directory -Path $outDir -Force
    $runs = [System.Collections.Generic.List[object]]::new()
    for ($round = 0; $round -lt $Settings.FarRounds; $round++) {
        foreach ($tool in (Get-ToolOrder $round)) {
            Reset-S3Counters -Proxy $proxy
            $run = Invoke-RestoreRun -Tool $tool -Config $config -History $history -Out (Join-Path $outDir 'restored.db') -Kind 'far' -Check $true
            $run | Add-Member -NotePropertyName Round -NotePropertyValue $round
            $run | Add-Member -NotePropertyName Gets -NotePropertyValue (Get-S3OperationCount (Get-S3Counters -Proxy $proxy) get -Category)
            $runs.Add($run)
            Write-BenchLine 'FarRestore' ("round {0} {1,-10} wall {2:N2} s, inside {3:N2} s, {4} GETs" -f $round, $tool, $run.WallSeconds, $run.InsideSeconds, $run.Gets)
        }
    }
    $pick = { param($tool, $field) Get-BenchStat -Values @($runs | Where-Object Tool -EQ $tool | ForEach-Object $field) }
    $summary = [ordered]@{
        OursWall = & $pick 'ours' 'WallSeconds'; OursInside = & $pick 'ours' 'InsideSeconds'; LitestreamWall = & $pick 'litestream' 'WallSeconds'
        OursGets = & $pick 'ours' 'Gets'; LitestreamGets = & $pick 'litestream' 'Gets'
    }
    $summary.RatioWallToLitestream = [math]::Round($summary.OursWall.Median / $summary.LitestreamWall.Median, 2)
    $summary.RatioInsideToLitestream = [math]::Round($summary.OursInside.Median / $summary.LitestreamWall.Median, 2)
    [ordered]@{
        History = [ordered]@{ Segments = [int]$m.Groups[1].Value; Indexes = [int]$m.Groups[2].Value; StoredKB = [math]::Round([long]$m.Groups[3].Value / 1KB); WriteSeconds = $Settings.FarSeconds; LatencyMs = $Settings.FarLatencyMs }
        Runs    = $runs
        Summary = $summary
    }
}

#endregion

#region Lag

function Invoke-LagCase {
    $runs = [System.Collections.Generic.List[object]]::new()
    for ($rep = 0; $rep -lt $Settings.LagReps; $rep++) {
        foreach ($tool in (Get-ToolOrder $rep)) {
            $dir = New-CaseDirectory "lag-$tool-$rep"
            $db = Join-Path $dir 'app.db'
            $null = Invoke-Writer init --db $db
            $replicaRoot = Join-Path $dir 'replicas'
            $config = New-BenchConfig -Path (Join-Path $dir 'bench.yml') -Database $db -ReplicaRoot $replicaRoot
            $proc = Start-BenchReplicator -Tool $tool -ConfigPath $config -LogPath (Join-Path $dir "$tool.log")
            $watcher = $null
            try {
                Wait-BenchSnapshot -ReplicaRoot $replicaRoot -Process $proc
                $watcher = [SqliteReplicaBench.ReplicaWatcher]::new($replicaRoot, 25)
                Start-Sleep -Seconds $Settings.LagPause
                foreach ($pattern in 'dense', 'sparse') {
                    $log = Join-Path $dir "writer-$pattern.log"
                    $arguments = if ($pattern -eq 'dense') { @('--interval-ms', '50', '--count', [string](20 * $Settings.LagDenseSeconds)) } else { @('--interval-ms', '5000', '--count', [string]$Settings.LagSparseCommits) }
                    $w = Start-Writer -Database $db -LogPath $log -Arguments $arguments
                    $null = $w | Wait-TestProcess -TimeoutSeconds 600
                    $commits = @(Read-Commit -LogPath $log)
                    $last = $commits[-1].Id
                    Wait-Until -TimeoutSeconds 60 -IntervalMilliseconds 50 -Message "replica holding row $last" -Condition { $watcher.MaxRowId -ge $last } | Out-Null
                    $lags = foreach ($c in $commits) { [double]($watcher.FirstSeenCarrying($c.Id) - $c.At) }
                    $span = ($commits[-1].At - $commits[0].At) / 1000
                    $stat = Get-BenchStat -Values $lags -Percentiles
                    $runs.Add([pscustomobject][ordered]@{
                            Tool = $tool; Rep = $rep; Pattern = $pattern; Commits = $commits.Count
                            TxPerSecond = $(if ($span -gt 0) { [math]::Round(($commits.Count - 1) / $span, 1) } else { $null })
                            P50Ms = $stat.P50; P90Ms = $stat.P90; P99Ms = $stat.P99; MaxMs = $stat.Max; MinMs = $stat.Min
                            LagsMs = $lags
                        })
                    Write-BenchLine 'Lag' ("{0,-10} {1,-6} {2} commits: p50 {3} ms, p90 {4} ms, p99 {5} ms, max {6} ms" -f $tool, $pattern, $commits.Count, $stat.P50, $stat.P90, $stat.P99, $stat.Max)
                    # Quiet before the next phase, longer than the sync interval: its first commit finds the last upload long past.
                    Start-Sleep -Seconds ([math]::Max(2, $Settings.LagPause))
                }
                $objects = @($watcher.Objects() | Where-Object { $_.Path -like '*.wal.lz4' })
                $runs | Where-Object { $_.Tool -eq $tool -and $_.Rep -eq $rep } | ForEach-Object { $_ | Add-Member -NotePropertyName SegmentsWritten -NotePropertyValue $objects.Count -Force }
            }
            finally {
                if ($watcher) { $watcher.Dispose() }
                $null = $proc | Stop-BenchProcess
            }
        }
    }
    $summary = foreach ($pattern in 'dense', 'sparse') {
        foreach ($tool in 'ours', 'litestream') {
            $all = @($runs | Where-Object { $_.Tool -eq $tool -and $_.Pattern -eq $pattern })
            $stat = Get-BenchStat -Values @($all | ForEach-Object { $_.LagsMs }) -Percentiles
            [pscustomobject][ordered]@{ Pattern = $pattern; Tool = $tool; Commits = $stat.N; TxPerSecond = (Get-BenchStat -Values @($all.TxPerSecond)).Median; P50Ms = $stat.P50; P90Ms = $stat.P90; P99Ms = $stat.P99; MaxMs = $stat.Max }
        }
    }
    [ordered]@{ Runs = @($runs | Select-Object -Property * -ExcludeProperty LagsMs); Summary = @($summary) }
}

#endregion

#region Overhead

# The overhead case's control, reported beside the two tools: the cost of the read lock alone.
$OverheadControl = 'read lock only'

function Invoke-OverheadCase {
    # Two settings of the application: synchronous=NORMAL (the usual WAL setting, PocketBase's;
    # commits are CPU-bound, so a replicator's CPU and locks show) and SQLite's default FULL (an
    # fsync per commit: the disk sets the rate).
    $variants = @(
        [pscustomobject]@{ Sync = 'normal'; Rows = $Settings.OverheadRows }
        [pscustomobject]@{ Sync = 'full'; Rows = [math]::Max(1000, [int]($Settings.OverheadRows / 10)) }
    )
    # Each tool replicates all of its "attached" databases from one process started at the
    # beginning and left to settle for CpuSettleSeconds, as a service would be: a replicator's
    # own first seconds (for SqliteReplica, pwsh's start-up JIT) are not what an application
    # lives with. Both replicators run throughout (the other one idle), in both tools' runs.
    $runs = [System.Collections.Generic.List[object]]::new()
    $replicators = [ordered]@{}
    $attachedDb = @{}
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    try {
        foreach ($tool in 'ours', 'litestream') {
            $dir = New-CaseDirectory "overhead-$tool-replicated"
            $dbs = foreach ($pair in 0..($Settings.OverheadPairs - 1)) {
                foreach ($variant in $variants) {
                    $db = Join-Path $dir ("app-{0}-{1}.db" -f $pair, $variant.Sync)
                    $null = Invoke-Writer init --db $db
                    $attachedDb["$tool/$pair/$($variant.Sync)"] = $db
                    $db
                }
            }
            $replicaRoot = Join-Path $dir 'replicas'
            $config = New-BenchConfig -Path (Join-Path $dir 'bench.yml') -Database @($dbs) -ReplicaRoot $replicaRoot
            $replicators[$tool] = Start-BenchReplicator -Tool $tool -ConfigPath $config -LogPath (Join-Path $dir "$tool.log")
            Wait-BenchSnapshot -ReplicaRoot $replicaRoot -Count @($dbs).Count -Process $replicators[$tool] -TimeoutSeconds 180
        }
        $rest = $Settings.CpuSettleSeconds - $clock.Elapsed.TotalSeconds
        if ($rest -gt 0) { Start-Sleep -Milliseconds ([int]($rest * 1000)) }
        for ($pair = 0; $pair -lt $Settings.OverheadPairs; $pair++) {
            foreach ($variant in $variants) {
                # The control runs after both tools in every pair: a process that only holds a read
                # transaction, as both tools must, and does nothing else (SqliteWriter hold).
                foreach ($tool in @(Get-ToolOrder $pair) + $OverheadControl) {
                    foreach ($attached in $false, $true) {
                        $holder = $null
                        if ($attached -and $tool -ne $OverheadControl) {
                            $db = $attachedDb["$tool/$pair/$($variant.Sync)"]
                            $dir = Split-Path -Parent $db
                            if ($replicators[$tool].HasExited) { throw "$tool stopped during the overhead case; see $dir" }
                        }
                        else {
                            $dir = New-CaseDirectory "overhead-$pair-$($variant.Sync)-$tool-$(if ($attached) { 'attached' } else { 'alone' })"
                            $db = Join-Path $dir 'app.db'
                            $null = Invoke-Writer init --db $db
                            if ($attached) {
                                $holder = Start-TestProcess -FilePath $script:WriterPath -ArgumentList @('hold', '--db', $db) -LogPath (Join-Path $dir 'hold.log') -Name 'hold'
                                Wait-Until -TimeoutSeconds 30 -IntervalMilliseconds 50 -Message 'the read-lock holder holding its read' -Condition {
                                    if ($holder.HasExited) { throw "The read-lock holder exited: $(Get-LogTail -Path $holder.LogPath -Lines 5)" }
                                    $holder.ReadLog() -match 'holding'
                                } | Out-Null
                            }
                        }
                        # The same quiet second before every run, attached or not.
                        Start-Sleep -Seconds 1
                        $log = Join-Path $dir ("writer-{0}-{1}-{2}.log" -f $pair, $variant.Sync, $attached)
                        $w = Start-Writer -Database $db -LogPath $log -Arguments @('--count', [string]$variant.Rows, '--synchronous', $variant.Sync)
                        $null = $w | Wait-TestProcess -TimeoutSeconds 600
                        if ($holder) {
                            if ($holder.HasExited) { throw "The read-lock holder exited during the run: $(Get-LogTail -Path $holder.LogPath -Lines 5)" }
                            $null = $holder | Stop-BenchProcess
                        }
                        $commits = @(Read-Commit -LogPath $log)
                        $rate = ($commits.Count - 1) / (($commits[-1].At - $commits[0].At) / 1000)
                        $runs.Add([pscustomobject][ordered]@{ Pair = $pair; Sync = $variant.Sync; Tool = $tool; Attached = $attached; Rows = $variant.Rows; RowsPerSecond = [math]::Round($rate, 0) })
                        Write-BenchLine 'Overhead' ("pair {0} synchronous={1,-6} {2,-10} attached={3,-5} {4:N0} rows/s" -f $pair, $variant.Sync, $tool, $attached, $rate)
                    }
                }
            }
        }
    }
    finally {
        foreach ($p in $replicators.Values) { $null = $p | Stop-BenchProcess }
    }
    $summary = foreach ($variant in $variants) {
        foreach ($tool in 'ours', 'litestream', $OverheadControl) {
            $mine = @($runs | Where-Object { $_.Tool -eq $tool -and $_.Sync -eq $variant.Sync })
            $ratios = foreach ($pair in 0..($Settings.OverheadPairs - 1)) {
                $without = @($mine | Where-Object { $_.Pair -eq $pair -and -not $_.Attached })[0].RowsPerSecond
                $with = @($mine | Where-Object { $_.Pair -eq $pair -and $_.Attached })[0].RowsPerSecond
                $with / $without
            }
            [pscustomobject][ordered]@{
                Sync = $variant.Sync
                Tool = $tool
                Without = Get-BenchStat -Values @($mine | Where-Object { -not $_.Attached } | ForEach-Object RowsPerSecond)
                With = Get-BenchStat -Values @($mine | Where-Object { $_.Attached } | ForEach-Object RowsPerSecond)
                KeptRatio = Get-BenchStat -Values @($ratios)
            }
        }
    }
    [ordered]@{ Runs = $runs; Summary = @($summary) }
}

#endregion

#region CPU per MB

function Invoke-CpuPerMBCase {
    # Two measured phases per run: "early" right after a short warm-up (the process's first
    # seconds: for SqliteReplica that includes pwsh's own start-up work and JIT compilation), and
    # "steady" once the replicator has run CpuSettleSeconds (what a long-running service costs).
    $runs = [System.Collections.Generic.List[object]]::new()
    $reps = if ($Mode -eq 'Smoke') { 1 } else { 2 }
    for ($rep = 0; $rep -lt $reps; $rep++) {
        foreach ($tool in (Get-ToolOrder $rep)) {
            $dir = New-CaseDirectory "cpu-$tool-$rep"
            $db = Join-Path $dir 'app.db'
            $null = Invoke-Writer init --db $db
            $replicaRoot = Join-Path $dir 'replicas'
            $config = New-BenchConfig -Path (Join-Path $dir 'bench.yml') -Database $db -ReplicaRoot $replicaRoot
            $started = [System.Diagnostics.Stopwatch]::StartNew()
            $proc = Start-BenchReplicator -Tool $tool -ConfigPath $config -LogPath (Join-Path $dir "$tool.log")
            $watcher = $null
            try {
                Wait-BenchSnapshot -ReplicaRoot $replicaRoot -Process $proc
                $watcher = [SqliteReplicaBench.ReplicaWatcher]::new($replicaRoot, 100)
                # Warm-up: the same kind of writes first (a tenth as many).
                $warm = Join-Path $dir 'warmup.log'
                $null = (Start-Writer -Database $db -LogPath $warm -Arguments @('--count', [string][math]::Max(500, [int]($Settings.CpuRows / 10)), '--rows-per-tx', '50', '--blob-bytes', '2000')) | Wait-TestProcess -TimeoutSeconds 600
                $warmLast = @(Read-Commit -LogPath $warm)[-1].Id
                Wait-Until -TimeoutSeconds 300 -IntervalMilliseconds 100 -Message "replica holding row $warmLast" -Condition { $watcher.MaxRowId -ge $warmLast } | Out-Null
                Start-Sleep -Seconds 3
                $phases = [ordered]@{}
                foreach ($phase in 'early', 'steady') {
                    if ($phase -eq 'steady') {
                        $rest = $Settings.CpuSettleSeconds - $started.Elapsed.TotalSeconds
                        if ($rest -gt 0) { Start-Sleep -Milliseconds ([int]($rest * 1000)) }
                    }
                    $before = [System.Collections.Generic.HashSet[string]]::new([string[]]@($watcher.Objects() | ForEach-Object Path))
                    $cpu0 = Get-BenchCpuSeconds -ProcessId $proc.Pid
                    $log = Join-Path $dir "writer-$phase.log"
                    $w = Start-Writer -Database $db -LogPath $log -Arguments @('--count', [string]$Settings.CpuRows, '--rows-per-tx', '50', '--blob-bytes', '2000')
                    $null = $w | Wait-TestProcess -TimeoutSeconds 600
                    $last = @(Read-Commit -LogPath $log)[-1].Id
                    Wait-Until -TimeoutSeconds 300 -IntervalMilliseconds 100 -Message "replica holding row $last" -Condition { $watcher.MaxRowId -ge $last } | Out-Null
                    # Let the replicator finish what follows the last upload (its checkpoint) before reading its CPU.
                    Start-Sleep -Seconds 3
                    $cpu1 = Get-BenchCpuSeconds -ProcessId $proc.Pid
                    # WAL segments written during the measured writes only; snapshots (a new generation's
                    # first object) are counted apart, since they are not WAL.
                    $new = @($watcher.Objects() | Where-Object { -not $before.Contains($_.Path) })
                    $walMB = [double](@($new | Where-Object { $_.Path -like '*.wal.lz4' } | ForEach-Object DecodedBytes) + 0 | Measure-Object -Sum).Sum / 1MB
                    $snapshotMB = [double](@($new | Where-Object { $_.Path -like '*.snapshot.lz4' } | ForEach-Object DecodedBytes) + 0 | Measure-Object -Sum).Sum / 1MB
                    # The denominator is everything shipped for these writes: normally all WAL; when
                    # a tool restarts its generation, part of it goes out as a snapshot instead.
                    $shippedMB = $walMB + $snapshotMB
                    $phases[$phase] = [pscustomobject][ordered]@{ AtSeconds = [math]::Round($started.Elapsed.TotalSeconds); WalShippedMB = [math]::Round($walMB, 1); SnapshotsMB = [math]::Round($snapshotMB, 1); CpuSeconds = [math]::Round($cpu1 - $cpu0, 2); CpuMsPerMB = [math]::Round(($cpu1 - $cpu0) * 1000 / $shippedMB, 1) }
                    Write-BenchLine 'CpuPerMB' ("{0,-10} {1,-6} {2:N1} MB of WAL shipped (+{3:N1} MB of snapshots), {4:N2} CPU s, {5:N1} CPU ms per MB shipped" -f $tool, $phase, $walMB, $snapshotMB, ($cpu1 - $cpu0), (($cpu1 - $cpu0) * 1000 / $shippedMB))
                }
                $generations = @([System.IO.Directory]::GetDirectories((Join-Path $replicaRoot 'app.db/generations'))).Count
                $steady = $phases['steady']
                $runs.Add([pscustomobject][ordered]@{ Tool = $tool; Rep = $rep; WalShippedMB = $steady.WalShippedMB; SnapshotsMB = $steady.SnapshotsMB; Generations = $generations; CpuSeconds = $steady.CpuSeconds; CpuMsPerMB = $steady.CpuMsPerMB; SteadyAtSeconds = $steady.AtSeconds; EarlyCpuSeconds = $phases['early'].CpuSeconds; EarlyCpuMsPerMB = $phases['early'].CpuMsPerMB; EarlyWalShippedMB = $phases['early'].WalShippedMB; EarlySnapshotsMB = $phases['early'].SnapshotsMB })
            }
            finally {
                if ($watcher) { $watcher.Dispose() }
                $null = $proc | Stop-BenchProcess
            }
        }
    }
    $summary = foreach ($tool in 'ours', 'litestream') {
        $mine = @($runs | Where-Object Tool -EQ $tool)
        [pscustomobject][ordered]@{ Tool = $tool; CpuMsPerMB = Get-BenchStat -Values @($mine | ForEach-Object CpuMsPerMB); WalShippedMB = (Get-BenchStat -Values @($mine | ForEach-Object WalShippedMB)).Median; EarlyCpuMsPerMB = Get-BenchStat -Values @($mine | ForEach-Object EarlyCpuMsPerMB) }
    }
    [ordered]@{ Runs = $runs; Summary = @($summary) }
}

#endregion

#region Resources

function Invoke-ResourcesCase {
    $runs = [System.Collections.Generic.List[object]]::new()
    # pwsh alone, idle (what every pwsh-hosted tool pays), and pwsh with the module imported.
    # Three of each, the median kept: an idle pwsh's peak varied by about 10 MB between runs.
    $baseline = foreach ($what in 'pwsh', 'pwsh+module') {
        $dir = New-CaseDirectory "pwsh-$what"
        $script = if ($what -eq 'pwsh') { 'Start-Sleep -Seconds 3600' } else { "Import-Module -Name '$($env:SQLITEREPLICA_MODULE.Replace("'", "''"))'; Start-Sleep -Seconds 3600" }
        $samples = foreach ($i in 1..3) {
            $p = Start-PwshProcess -Script $script -LogPath (Join-Path $dir "pwsh-$i.log") -Name 'pwsh-idle'
            Start-Sleep -Seconds 6
            Get-BenchMemory -ProcessId $p.Pid
            $null = $p | Stop-TestProcess -Signal KILL
        }
        $peak = Get-BenchStat -Values @($samples | ForEach-Object PeakRssMB)
        $rss = Get-BenchStat -Values @($samples | ForEach-Object RssMB)
        Write-BenchLine 'Resources' ("idle {0}: peak RSS {1} MB (median of 3, {2}-{3})" -f $what, $peak.Median, $peak.Min, $peak.Max)
        [pscustomobject][ordered]@{ What = $what; PeakRssMB = $peak.Median; RssMB = $rss.Median; PeakRssMinMB = $peak.Min; PeakRssMaxMB = $peak.Max }
    }
    $round = 0
    # 'ours' is pwsh as it starts by default (its telemetry on), 'ours-service' as the README's
    # service unit starts it (POWERSHELL_TELEMETRY_OPTOUT=1), one database only. Beside each of
    # them an idle pwsh with the module imported and the same environment is measured over the
    # same windows: the part of the idle CPU that is pwsh's own.
    $environments = @{ 'ours' = @{ POWERSHELL_TELEMETRY_OPTOUT = $null }; 'ours-service' = @{ POWERSHELL_TELEMETRY_OPTOUT = '1' }; 'litestream' = $null }
    $importOnly = "Import-Module -Name '$($env:SQLITEREPLICA_MODULE.Replace("'", "''"))'; Start-Sleep -Seconds 3600"
    foreach ($count in $Settings.ResourceDbs) {
        $tools = @(Get-ToolOrder $round)
        if ($count -eq 1) { $tools += 'ours-service' }
        foreach ($tool in $tools) {
            $environment = $environments[$tool]
            $replicatorTool = if ($tool -eq 'litestream') { 'litestream' } else { 'ours' }
            # Sets up fresh databases, starts the replicator and gives it the same work every time
            # (500 rows of 1 KB on every database after its first snapshot, then 8 s of quiet).
            $startWorked = {
                param([int]$Start, [bool]$WithIdlePwsh)
                $dir = New-CaseDirectory "res-$tool-$count-$Start"
                $dbs = foreach ($i in 1..$count) { Join-Path $dir ('app{0:D2}.db' -f $i) }
                foreach ($db in $dbs) { $null = Invoke-Writer init --db $db }
                $replicaRoot = Join-Path $dir 'replicas'
                $config = New-BenchConfig -Path (Join-Path $dir 'bench.yml') -Database $dbs -ReplicaRoot $replicaRoot
                $r = [pscustomobject]@{ Proc = $null; IdlePwsh = $null }
                $r.Proc = Start-BenchReplicator -Tool $replicatorTool -ConfigPath $config -LogPath (Join-Path $dir "$tool.log") -Environment $environment
                if ($WithIdlePwsh) { $r.IdlePwsh = Start-PwshProcess -Script $importOnly -LogPath (Join-Path $dir 'pwsh-idle.log') -Environment $environment -Name 'pwsh-idle' }
                # Emitted before the waits, so a caller that collects it can stop the processes
                # even when the snapshot never comes.
                $r
                Wait-BenchSnapshot -ReplicaRoot $replicaRoot -Count $count -Process $r.Proc -TimeoutSeconds 180
                foreach ($db in $dbs) { $null = Invoke-Writer write --db $db --count 500 --rows-per-tx 10 --blob-bytes 1000 }
            }
            $stopStarted = {
                param($Started)
                foreach ($r in @($Started)) {
                    if ($r.Proc) { $null = $r.Proc | Stop-BenchProcess }
                    if ($r.IdlePwsh) { $null = $r.IdlePwsh | Stop-TestProcess -Signal KILL }
                }
            }

            $started = [System.Collections.Generic.List[object]]::new()
            try {
                & $startWorked 0 ($tool -ne 'litestream') | ForEach-Object { $started.Add($_) }
                $proc = $started[0].Proc
                $idlePwsh = $started[0].IdlePwsh
                Start-Sleep -Seconds 8
                # Two idle windows back to back: the first right after the writes (for
                # SqliteReplica it includes pwsh's own start-up work and tiered JIT), the second
                # once that has settled (what a long-running idle service costs).
                $cpu0 = Get-BenchCpuSeconds -ProcessId $proc.Pid
                $pwsh0 = if ($idlePwsh) { Get-BenchCpuSeconds -ProcessId $idlePwsh.Pid }
                Start-Sleep -Seconds $Settings.IdleSeconds
                $cpu1 = Get-BenchCpuSeconds -ProcessId $proc.Pid
                $pwsh1 = if ($idlePwsh) { Get-BenchCpuSeconds -ProcessId $idlePwsh.Pid }
                Start-Sleep -Seconds $Settings.IdleSeconds
                $cpu2 = Get-BenchCpuSeconds -ProcessId $proc.Pid
                $pwsh2 = if ($idlePwsh) { Get-BenchCpuSeconds -ProcessId $idlePwsh.Pid }
                $mem = Get-BenchMemory -ProcessId $proc.Pid
                $run = [ordered]@{ Tool = $tool; Databases = $count; IdleSeconds = $Settings.IdleSeconds; IdleCpuSeconds = [math]::Round($cpu1 - $cpu0, 2); IdleCpuPercent = [math]::Round(100 * ($cpu1 - $cpu0) / $Settings.IdleSeconds, 3); SteadyIdleCpuSeconds = [math]::Round($cpu2 - $cpu1, 2); SteadyIdleCpuPercent = [math]::Round(100 * ($cpu2 - $cpu1) / $Settings.IdleSeconds, 3); PeakRssMB = $mem.PeakRssMB; RssMB = $mem.RssMB }
                if ($idlePwsh) {
                    $run.IdlePwshCpuSeconds = [math]::Round($pwsh1 - $pwsh0, 2)
                    $run.SteadyIdlePwshCpuSeconds = [math]::Round($pwsh2 - $pwsh1, 2)
                }
                $pwshNote = if ($idlePwsh) { " (an idle pwsh beside it: {0:N2} s, then {1:N2} s)" -f $run.IdlePwshCpuSeconds, $run.SteadyIdlePwshCpuSeconds } else { '' }
                Write-BenchLine 'Resources' ("{0,-12} {1,2} db: idle CPU {2:N2} s in the first {3} s, {4:N2} s in the next {3} s{6}, peak RSS {5} MB" -f $tool, $count, ($cpu1 - $cpu0), $Settings.IdleSeconds, ($cpu2 - $cpu1), $mem.PeakRssMB, $pwshNote)
            }
            finally {
                & $stopStarted $started
            }

            # One start's peak moves by about 10 MB (with when the GC runs), so further starts get
            # the same work and the same lifetime (started together, after the first) and only
            # their peak is read; the median over all starts is reported.
            $peaks = [System.Collections.Generic.List[double]]::new()
            $peaks.Add($mem.PeakRssMB)
            if ($Settings.ResourceMemoryStarts -gt 1) {
                $extra = [System.Collections.Generic.List[object]]::new()
                try {
                    for ($start = 1; $start -lt $Settings.ResourceMemoryStarts; $start++) {
                        & $startWorked $start $false | ForEach-Object { $extra.Add($_) }
                    }
                    Start-Sleep -Seconds (8 + 2 * $Settings.IdleSeconds)
                    foreach ($r in $extra) {
                        if ($r.Proc.HasExited) { throw "$tool exited during a memory start: $(Get-LogTail -Path $r.Proc.LogPath -Lines 10)" }
                        $peaks.Add((Get-BenchMemory -ProcessId $r.Proc.Pid).PeakRssMB)
                    }
                }
                finally {
                    & $stopStarted $extra
                }
                Write-BenchLine 'Resources' ("{0,-12} {1,2} db: peak RSS of {2} starts {3} MB" -f $tool, $count, $peaks.Count, ($peaks -join ', '))
            }
            $stat = Get-BenchStat -Values @($peaks)
            $run.PeakRssStartsMB = @($peaks)
            $run.PeakRssMinMB = $stat.Min
            $run.PeakRssMaxMB = $stat.Max
            $run.PeakRssMB = $stat.Median
            $runs.Add([pscustomobject]$run)
        }
        $round++
    }
    [ordered]@{ Baseline = @($baseline); Runs = $runs }
}

#endregion

#region Requests

function Invoke-RequestsCase {
    $dir = New-CaseDirectory 'requests'
    $moto = Start-MotoServer -LogPath (Join-Path $dir 'moto.log')
    $proxy = Start-S3Proxy -Upstream $moto.Endpoint -Http -LogPath (Join-Path $dir 's3proxy.log')
    $runs = [System.Collections.Generic.List[object]]::new()
    foreach ($tool in (Get-ToolOrder 0)) {
        $bucket = New-S3Bucket -Endpoint $moto.Endpoint -Name "bench-req-$tool"
        $db = Join-Path $dir "$tool/app.db"
        $null = New-Item -ItemType Directory -Path (Split-Path $db) -Force
        $null = Invoke-Writer init --db $db
        $config = New-BenchConfig -Path (Join-Path $dir "$tool.yml") -Database $db -Endpoint $proxy.HttpEndpoint -Bucket $bucket
        Reset-S3Counters -Proxy $proxy
        $proc = Start-BenchReplicator -Tool $tool -ConfigPath $config -LogPath (Join-Path $dir "$tool.log")
        $writer = $null
        try {
            Wait-Until -TimeoutSeconds 120 -IntervalMilliseconds 200 -Message "$tool's first upload" -Condition {
                if ($proc.HasExited) { throw "$tool exited: $(Get-LogTail -Path $proc.LogPath -Lines 10)" }
                (Get-S3OperationCount (Get-S3Counters -Proxy $proxy) put -Category) -ge 1
            } | Out-Null
            $startup = Get-S3Counters -Proxy $proxy -Reset
            # The trickle: one single-row commit every 2 s.
            $writer = Start-Writer -Database $db -LogPath (Join-Path $dir "$tool-writer.log") -Arguments @('--interval-ms', '2000', '--count', '0')
            Start-Sleep -Seconds 3
            Reset-S3Counters -Proxy $proxy
            Start-Sleep -Seconds $Settings.RequestSeconds
            $trickle = Get-S3Counters -Proxy $proxy
            $null = $writer | Stop-TestProcess -Signal TERM
            $writer = $null
            Start-Sleep -Seconds 5
            Reset-S3Counters -Proxy $proxy
            Start-Sleep -Seconds $Settings.RequestIdleSeconds
            $idle = Get-S3Counters -Proxy $proxy
            foreach ($phase in @(@{ Name = 'trickle'; C = $trickle; S = $Settings.RequestSeconds }, @{ Name = 'idle'; C = $idle; S = $Settings.RequestIdleSeconds })) {
                $scale = 3600 / $phase.S
                $row = [ordered]@{ Tool = $tool; Phase = $phase.Name; Seconds = $phase.S }
                foreach ($cat in 'put', 'get', 'head', 'list', 'delete', 'multipart', 'other') { $row["${cat}PerHour"] = [math]::Round((Get-S3OperationCount $phase.C $cat -Category) * $scale, 0) }
                $row.ClassAPerHour = [math]::Round([double]$phase.C.classA * $scale, 0)
                $row.ClassBPerHour = [math]::Round([double]$phase.C.classB * $scale, 0)
                # R2: Class A $4.50 per million, Class B $0.36 per million; 730 hours a month; before the free tier.
                $row.R2MonthlyUsd = [math]::Round(($row.ClassAPerHour * 730 * 4.50 + $row.ClassBPerHour * 730 * 0.36) / 1e6, 3)
                $runs.Add([pscustomobject]$row)
                Write-BenchLine 'Requests' ("{0,-10} {1,-7} PUT {2}/h, GET {3}/h, LIST {4}/h, DELETE {5}/h, R2 ~`${6}/month" -f $tool, $phase.Name, $row.putPerHour, $row.getPerHour, $row.listPerHour, $row.deletePerHour, $row.R2MonthlyUsd)
            }
            $runs | Where-Object Tool -EQ $tool | ForEach-Object { $_ | Add-Member -NotePropertyName StartupRequests -NotePropertyValue ([ordered]@{ total = $startup.total; categories = $startup.categories }) -Force }
        }
        finally {
            if ($writer) { $null = $writer | Stop-TestProcess -Signal TERM }
            $null = $proc | Stop-BenchProcess
        }
    }
    [ordered]@{ Runs = $runs }
}

#endregion

#region Burst

function Invoke-BurstCase {
    # The writer at its maximum rate with SQLite's default synchronous=FULL (an fsync per commit:
    # the disk sets the pace) and with NORMAL (PocketBase's setting: commits are CPU-bound, about
    # ten times as many, and one sync interval's WAL can pass 100 MB). For SqliteReplica the
    # status file's backlog (bytes pending) is sampled with the sizes, and the replica's
    # generations are counted after: each one past the first is a full snapshot.
    $runs = [System.Collections.Generic.List[object]]::new()
    foreach ($sync in 'full', 'normal') {
        foreach ($tool in (Get-ToolOrder 0)) {
            $dir = New-CaseDirectory "burst-$sync-$tool"
            $db = Join-Path $dir 'app.db'
            $null = Invoke-Writer init --db $db
            $replicaRoot = Join-Path $dir 'replicas'
            $meta = Join-Path $dir '.app.db-litestream'
            $statusPath = Join-Path $meta 'sqlitereplica-status.json'
            $config = New-BenchConfig -Path (Join-Path $dir 'bench.yml') -Database $db -ReplicaRoot $replicaRoot
            $proc = Start-BenchReplicator -Tool $tool -ConfigPath $config -LogPath (Join-Path $dir "$tool.log")
            $watcher = $null
            try {
                Wait-BenchSnapshot -ReplicaRoot $replicaRoot -Process $proc
                $watcher = [SqliteReplicaBench.ReplicaWatcher]::new($replicaRoot, 100)
                $log = Join-Path $dir 'writer.log'
                # The app at its maximum rate: single-row commits of 1 KB rows, no pause.
                $w = Start-Writer -Database $db -LogPath $log -Arguments @('--count', '0', '--blob-bytes', '1000', '--synchronous', $sync)
                $peakWal = 0.0; $peakShadow = 0.0; $peakPending = -1.0; $peakOverCap = $null
                # Dot-sourced below, so it updates this scope's peaks.
                $sample = {
                    $peakWal = [math]::Max($peakWal, (Get-FileSizeMB "$db-wal"))
                    $peakShadow = [math]::Max($peakShadow, (Get-DirectorySizeMB -Path $meta))
                    if ($tool -eq 'ours') {
                        $status = Get-StatusSample -Path $statusPath
                        if ($null -ne $status) {
                            $peakPending = [math]::Max($peakPending, $status.BytesPending)
                            $peakOverCap = if ($null -eq $peakOverCap) { $status.ShadowOverCap } else { [math]::Max($peakOverCap, $status.ShadowOverCap) }
                        }
                    }
                }
                $clock = [System.Diagnostics.Stopwatch]::StartNew()
                while ($clock.Elapsed.TotalSeconds -lt $Settings.BurstSeconds) {
                    . $sample
                    Start-Sleep -Milliseconds 250
                }
                $null = $w | Stop-TestProcess -Signal TERM
                $commits = @(Read-Commit -LogPath $log)
                $last = $commits[-1].Id
                $burstSeconds = ($commits[-1].At - $commits[0].At) / 1000
                $deadline = [System.Diagnostics.Stopwatch]::StartNew()
                $caught = $false
                while ($deadline.Elapsed.TotalSeconds -lt [math]::Max(30, 4 * $burstSeconds)) {
                    . $sample
                    if ($watcher.MaxRowId -ge $last) { $caught = $true; break }
                    if ($proc.HasExited) { break }
                    Start-Sleep -Milliseconds 100
                }
                $catchUp = if ($caught) { ($watcher.FirstSeenCarrying($last) - $commits[-1].At) / 1000 } else { $null }
                $mem = Get-BenchMemory -ProcessId $proc.Pid
                $walStored = ($watcher.DecodedBytes) / 1MB
                $generations = @(Get-ChildItem -LiteralPath (Join-Path $replicaRoot 'app.db/generations') -Directory -ErrorAction SilentlyContinue).Count
                $runs.Add([pscustomobject][ordered]@{
                        Tool = $tool; Synchronous = $sync; BurstSeconds = [math]::Round($burstSeconds, 1); Commits = $commits.Count; CommitsPerSecond = [math]::Round($commits.Count / $burstSeconds, 0)
                        WalShippedMB = [math]::Round($walStored, 1); PeakLocalWalMB = $peakWal; PeakShadowMB = $peakShadow; PeakRssMB = $mem.PeakRssMB
                        PeakStatusPendingMB = $(if ($peakPending -ge 0) { [math]::Round($peakPending / 1MB, 1) } else { $null })
                        PeakStatusShadowOverCapMB = $(if ($null -ne $peakOverCap) { [math]::Round($peakOverCap / 1MB, 1) } else { $null }); Generations = $generations
                        Alive = -not $proc.HasExited; CaughtUp = $caught; CatchUpSecondsAfterBurst = $(if ($null -ne $catchUp) { [math]::Round($catchUp, 2) } else { $null })
                    })
                Write-BenchLine 'Burst' ("{0,-10} synchronous={1,-6} {2} commits in {3:N1} s ({4:N0}/s): WAL peak {5} MB, shadow peak {6} MB, {7} generation(s), caught up {8} s after the burst" -f $tool, $sync, $commits.Count, $burstSeconds, ($commits.Count / $burstSeconds), $peakWal, $peakShadow, $generations, $catchUp)
            }
            finally {
                if ($watcher) { $watcher.Dispose() }
                $null = $proc | Stop-BenchProcess
            }
        }
    }
    [ordered]@{ Runs = $runs }
}

function Get-StatusSample {
    # From SqliteReplica's status file: the largest bytesPending of the replicas, and the shadow's
    # bytes minus its cap (the cap is twice the database, at least 256 MB, so it grows in a burst);
    # $null when there is no file yet or it was caught mid-rename.
    param([Parameter(Mandatory)][string]$Path)
    try {
        $status = [System.IO.File]::ReadAllText($Path) | ConvertFrom-Json
        $values = @($status.replicas | ForEach-Object { [double]$_.bytesPending })
        if ($values.Count -eq 0) { return $null }
        [pscustomobject]@{
            BytesPending = ($values | Measure-Object -Maximum).Maximum
            ShadowOverCap = [double]$status.shadowBytes - [double]$status.shadowCapBytes
        }
    }
    catch { $null }
}

#endregion

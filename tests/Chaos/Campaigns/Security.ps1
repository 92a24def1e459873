# Campaign g: secrets and file modes. Every cmdlet runs with known, recognisable secrets (S3 keys
# in LITESTREAM_* variables, a -Credential, literal keys in a configuration); every stream, log,
# error (message, exception text, all properties), status object, status file, metrics page, job
# and file the module writes is scanned for them. Files the module creates (meta directory, shadow
# WAL, status file, lock, file replica, restored database, temporary and spool files) must not be
# world-readable, also when the process umask is 000.

function New-ChaosSecret {
    param([Parameter(Mandatory)][System.Random]$Random, [Parameter(Mandatory)][string]$Prefix, [int]$Length = 40, [string]$Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789')
    $chars = for ($i = 0; $i -lt $Length; $i++) { $Alphabet[$Random.Next(0, $Alphabet.Length)] }
    $Prefix + (-join $chars)
}

function Invoke-SecurityCampaign {
    param([Parameter(Mandatory)]$Result)
    $Result.Title = 'g. Security: secrets never echoed, private file modes'
    $Result.Description = (
        'Six recognisable random secrets (an access key id and secret in LITESTREAM_* variables, a -Credential user and password, ' +
        'literal keys in a configuration) are used by every cmdlet: Start-SqliteReplication (as a child process with -ReplicaUrl, as ' +
        'a child with -ConfigPath serving metrics and logging JSON at debug level, and -AsJob with -Credential), Restore-SqliteReplica, ' +
        'Get-ReplicaGeneration/-Snapshot/-WalSegment, Test-ReplicaRestore and Get-SqliteReplicationStatus, each also failing (403, ' +
        'missing bucket, 503 bursts). Scanned: every record of every stream (verbose and debug included), every error''s message, ' +
        'exception text and properties, the output objects as JSON and as lists, Get-SqliteReplicationStatus | ConvertTo-Json, the ' +
        'status files, the /metrics page, the jobs, the child processes'' whole output, every file the module wrote (meta directories, ' +
        'file replica, temporary and restored files) and every object in the bucket. The replicator children and a restore child run ' +
        'under umask 000; transient spool and restore files are caught while a stalled request keeps them open.')
    $random = Get-ChaosRandom 'Security'
    $secrets = [ordered]@{
        'env access key id'        = New-ChaosSecret -Random $random -Prefix 'AKIAENV' -Length 13 -Alphabet 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
        'env secret key'           = New-ChaosSecret -Random $random -Prefix 'envSecret' -Length 31
        'credential user'          = New-ChaosSecret -Random $random -Prefix 'AKIACRED' -Length 12 -Alphabet 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
        'credential password'      = New-ChaosSecret -Random $random -Prefix 'credPassword' -Length 28
        'config access key id'     = New-ChaosSecret -Random $random -Prefix 'AKIACONF' -Length 12 -Alphabet 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
        'config secret key'        = New-ChaosSecret -Random $random -Prefix 'confSecret' -Length 30
    }
    $s3 = Get-ChaosS3
    $proxy = $s3.Proxy
    $dir = Join-Path $Chaos.Scratch 'security'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $bucket = New-ChaosBucket -Name 'sec'
    $texts = [System.Collections.Generic.List[object]]::new()
    $modes = [System.Collections.Generic.List[object]]::new()
    $scanRoots = [System.Collections.Generic.List[string]]::new()
    $saved = @{ LITESTREAM_ACCESS_KEY_ID = $env:LITESTREAM_ACCESS_KEY_ID; LITESTREAM_SECRET_ACCESS_KEY = $env:LITESTREAM_SECRET_ACCESS_KEY; DebugPreference = $DebugPreference; TMPDIR = $env:TMPDIR }
    # This campaign's own temporary folder (drills, restores and spool files of this process), scanned
    # at the end; the campaign-wide one also holds the second lane's files.
    $ownTmp = Join-Path $dir 'tmp-this-process'
    $null = New-Item -ItemType Directory -Path $ownTmp -Force
    $env:TMPDIR = $ownTmp
    $env:LITESTREAM_ACCESS_KEY_ID = $secrets['env access key id']
    $env:LITESTREAM_SECRET_ACCESS_KEY = $secrets['env secret key']
    $credential = [System.Management.Automation.PSCredential]::new($secrets['credential user'], (ConvertTo-SecureString -String $secrets['credential password'] -AsPlainText -Force))
    $childEnv = @{ LITESTREAM_ACCESS_KEY_ID = $secrets['env access key id']; LITESTREAM_SECRET_ACCESS_KEY = $secrets['env secret key'] }

    Reset-S3Counters -Proxy $proxy
    $inUse = @()
    try {
        # --- A database with a > 8 MiB snapshot (spooled to a temporary file before upload).
        $db = Join-Path $dir 'app.db'
        $null = New-TestDatabase -Path $db -Rows 20
        $null = Invoke-Writer bigtx --db $db --pages 2600
        $url = "s3://$bucket/app.db"
        $a1Tmp = Join-Path $dir 'tmp-a1'
        $null = New-Item -ItemType Directory -Path $a1Tmp -Force
        $scanRoots.Add($a1Tmp)

        # --- A1: a child replicator with the LITESTREAM_* secrets, umask 000, debug records, faults.
        $null = Set-S3Fault -Proxy $proxy -Kind stall -Seconds 3 -Count 1 -Match PutObject -PathContains '/snapshots/'
        $a1 = Start-ChaosReplicator -Parameters @{ DatabasePath = $db; ReplicaUrl = $url; Endpoint = $proxy.Endpoint; SkipVerify = $true; SyncInterval = '200ms'; MonitorInterval = '100ms' } -LogPath (Join-Path $dir 'a1.log') -Environment ($childEnv + @{ TMPDIR = $a1Tmp }) -Umask '000' -DebugOutput -NoWait | Register-ChaosChild
        $seen = Watch-TransientFile -Path @($a1Tmp) -Seconds 12 -Until { Select-String -LiteralPath (Join-Path $dir 'a1.log') -Pattern 'snapshot written' -Quiet }
        foreach ($f in $seen) { $modes.Add([pscustomobject]@{ Label = 'S3 upload spool file (transient, child under umask 000)'; Path = $f.Path; Kind = 'file'; Mode = $f.Mode; WorldReadable = $f.WorldReadable; GroupReadable = $f.GroupReadable }) }
        if ($seen.Count -eq 0) { $Result.Notes.Add('no S3 spool file was caught during the stalled snapshot upload (it may have been held in memory)') }
        $null = Wait-LogLine -Path (Join-Path $dir 'a1.log') -Pattern 'wal segment written' -TimeoutSeconds 60 -Process $a1
        $writer = Start-Writer write --db $db --count 0 --interval-ms 20 -StdoutPath (Join-Path $dir 'writer.out') | Register-ChaosChild
        $null = Set-S3Fault -Proxy $proxy -Kind status -Status 503 -Count 3 -Match PutObject
        $null = Set-S3Fault -Proxy $proxy -Kind status -Status 403 -Code SignatureDoesNotMatch -Message 'The request signature we calculated does not match the signature you provided.' -Count 2 -Match PutObject
        Start-Sleep -Seconds 4
        Clear-S3Fault -Proxy $proxy
        Start-Sleep -Seconds 1
        $meta = Join-Path $dir '.app.db-litestream'
        $texts.Add([pscustomobject]@{ Source = 'status file (A1)'; Text = (Read-ChaosText -Path (Join-Path $meta 'sqlitereplica-status.json')) })
        $texts.Add([pscustomobject]@{ Source = 'Get-SqliteReplicationStatus | ConvertTo-Json (A1)'; Text = (Get-SqliteReplicationStatus -DatabasePath $db | ConvertTo-Json -Depth 5) })
        $texts.Add([pscustomobject]@{ Source = 'Get-SqliteReplicationStatus | Format-List (A1)'; Text = (Get-SqliteReplicationStatus -DatabasePath $db | Format-List * | Out-String) })
        $modes.AddRange([object[]]@(Get-UnixModeEntry -Path $meta -Label 'meta directory of a replicator under umask 000'))
        $null = $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30
        $code = $a1 | Stop-ChaosReplicator
        $texts.Add([pscustomobject]@{ Source = 'A1 child output (all streams, stderr)'; Text = (Read-ChaosText -Path (Join-Path $dir 'a1.log')) })
        $texts.Add([pscustomobject]@{ Source = 'status file after SIGTERM (A1)'; Text = (Read-ChaosText -Path (Join-Path $meta 'sqlitereplica-status.json')) })
        $scanRoots.Add($meta)
        $Result.Notes.Add("A1 (LITESTREAM_* variables, umask 000): exit $code after SIGTERM")

        # --- A2: a child replicator from a configuration with literal keys, metrics, JSON logging at debug level, and a file replica.
        $db2 = Join-Path $dir 'config.db'
        $null = New-TestDatabase -Path $db2 -Rows 20
        $fileReplica = Join-Path $dir 'file-replica'
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0); $listener.Start(); $metricsPort = $listener.LocalEndpoint.Port; $listener.Stop()
        $config = Join-Path $dir 'litestream.yml'
        [System.IO.File]::WriteAllText($config, (@(
                    "access-key-id: $($secrets['config access key id'])"
                    "secret-access-key: $($secrets['config secret key'])"
                    "addr: 127.0.0.1:$metricsPort"
                    'logging:'
                    '  level: debug'
                    '  type: json'
                    '  stderr: true'
                    'dbs:'
                    "  - path: `"$db2`""
                    '    monitor-interval: 100ms'
                    '    replicas:'
                    '      - type: s3'
                    '        name: s3'
                    "        bucket: $bucket"
                    '        path: config.db'
                    "        endpoint: $($proxy.Endpoint)"
                    '        skip-verify: true'
                    '        sync-interval: 200ms'
                    '      - type: file'
                    '        name: file'
                    "        path: `"$fileReplica`""
                    '        sync-interval: 200ms'
                ) -join "`n") + "`n")
        $a2Tmp = Join-Path $dir 'tmp-a2'
        $null = New-Item -ItemType Directory -Path $a2Tmp -Force
        $scanRoots.Add($a2Tmp)
        $a2 = Start-ChaosReplicator -Parameters @{ ConfigPath = $config } -LogPath (Join-Path $dir 'a2.log') -Environment @{ TMPDIR = $a2Tmp; LITESTREAM_ACCESS_KEY_ID = $null; LITESTREAM_SECRET_ACCESS_KEY = $null } -Umask '000' -DebugOutput -NoWait | Register-ChaosChild
        $null = Wait-Until -TimeoutSeconds 60 -Message 'the configured replicator to upload' -Condition { (Read-ChaosText -Path (Join-Path $dir 'a2.log')) -match 'wal segment written' -or $a2.HasExited }
        $null = Invoke-Writer write --db $db2 --count 50 --interval-ms 5
        $null = Set-S3Fault -Proxy $proxy -Kind status -Status 403 -Code AccessDenied -Message 'Access Denied' -Count 2 -Match PutObject
        $null = Invoke-Writer write --db $db2 --count 20 --interval-ms 5
        Start-Sleep -Seconds 3
        Clear-S3Fault -Proxy $proxy
        $metrics = ''
        try {
            $client = [System.Net.Http.HttpClient]::new()
            $metrics = $client.GetStringAsync("http://127.0.0.1:$metricsPort/metrics").GetAwaiter().GetResult()
            $client.Dispose()
        }
        catch { $Result.Notes.Add("the metrics page could not be read: $($_.Exception.Message)") }
        $texts.Add([pscustomobject]@{ Source = '/metrics (A2)'; Text = $metrics })
        $texts.Add([pscustomobject]@{ Source = 'Get-SqliteReplicationStatus -ConfigPath | ConvertTo-Json (A2)'; Text = (Get-SqliteReplicationStatus -ConfigPath $config | ConvertTo-Json -Depth 5) })
        $meta2 = Join-Path $dir '.config.db-litestream'
        $texts.Add([pscustomobject]@{ Source = 'status file (A2)'; Text = (Read-ChaosText -Path (Join-Path $meta2 'sqlitereplica-status.json')) })
        $code = $a2 | Stop-ChaosReplicator
        $texts.Add([pscustomobject]@{ Source = 'A2 child output (JSON log on stderr, all streams)'; Text = (Read-ChaosText -Path (Join-Path $dir 'a2.log')) })
        $modes.AddRange([object[]]@(Get-UnixModeEntry -Path $meta2 -Label 'meta directory (config, umask 000)'))
        $modes.AddRange([object[]]@(Get-UnixModeEntry -Path $fileReplica -Label 'file replica (umask 000)'))
        $scanRoots.Add($meta2); $scanRoots.Add($fileReplica)
        $Result.Notes.Add("A2 (configuration with literal keys, metrics on addr, JSON logging at debug level): exit $code after SIGTERM; metrics page $($metrics.Length) characters")

        # --- In this process: every cmdlet with each credential source, succeeding and failing.
        $DebugPreference = 'Continue'
        $restoreDir = Join-Path $dir 'restores'
        $null = New-Item -ItemType Directory -Path $restoreDir -Force
        $scanRoots.Add($restoreDir)
        $n = 0
        $nextOut = { $script:SecurityRestoreNumber++; Join-Path $restoreDir ("restored-{0}.db" -f $script:SecurityRestoreNumber) }
        $script:SecurityRestoreNumber = 0
        $s3Env = @{ ReplicaUrl = $url; Endpoint = $proxy.Endpoint; SkipVerify = $true }
        $s3Cred = $s3Env + @{ Credential = $credential }
        $calls = @(
            @{ Label = 'Restore-SqliteReplica (variables)'; Block = { Restore-SqliteReplica @s3Env -OutputPath (& $nextOut) -Verbose } }
            @{ Label = 'Restore-SqliteReplica -Credential'; Block = { Restore-SqliteReplica @s3Cred -OutputPath (& $nextOut) -Verbose } }
            @{ Label = 'Restore-SqliteReplica -ConfigPath'; Block = { Restore-SqliteReplica -ConfigPath $config -DatabasePath $db2 -OutputPath (& $nextOut) -Verbose } }
            @{ Label = 'Get-ReplicaGeneration -Credential'; Block = { Get-ReplicaGeneration @s3Cred -Verbose | ForEach-Object { $_ | ConvertTo-Json -Depth 4; $_ | Format-List * | Out-String } } }
            @{ Label = 'Get-ReplicaSnapshot (variables)'; Block = { Get-ReplicaSnapshot @s3Env -Verbose | ForEach-Object { $_ | ConvertTo-Json -Depth 4 } } }
            @{ Label = 'Get-ReplicaWalSegment -ConfigPath'; Block = { Get-ReplicaWalSegment -ConfigPath $config -DatabasePath $db2 -Verbose | Select-Object -First 5 | ForEach-Object { $_ | ConvertTo-Json -Depth 4 } } }
            @{ Label = 'Test-ReplicaRestore -Credential'; Block = { Test-ReplicaRestore @s3Cred -DatabasePath $db -MaxLag '5s' -Verbose | ForEach-Object { $_ | ConvertTo-Json -Depth 5; $_.Checks | Format-List * | Out-String } } }
            @{ Label = 'Test-ReplicaRestore -ConfigPath'; Block = { Test-ReplicaRestore -ConfigPath $config -DatabasePath $db2 -MaxLag '5s' -Verbose | ForEach-Object { $_ | ConvertTo-Json -Depth 5 } } }
            @{ Label = 'Restore-SqliteReplica -Credential, 403 SignatureDoesNotMatch'; Fault = @{ Kind = 'status'; Status = 403; Code = 'SignatureDoesNotMatch'; Count = -1 }; Block = { Restore-SqliteReplica @s3Cred -OutputPath (& $nextOut) -Verbose } }
            @{ Label = 'Get-ReplicaSnapshot (variables), 403 AccessDenied'; Fault = @{ Kind = 'status'; Status = 403; Code = 'AccessDenied'; Count = -1 }; Block = { Get-ReplicaSnapshot @s3Env -Verbose } }
            @{ Label = 'Restore-SqliteReplica -ConfigPath, 503 burst then success'; Fault = @{ Kind = 'status'; Status = 503; Count = 3 }; Block = { Restore-SqliteReplica -ConfigPath $config -DatabasePath $db2 -OutputPath (& $nextOut) -Verbose } }
            @{ Label = 'Get-ReplicaGeneration -Credential, missing bucket'; Block = { Get-ReplicaGeneration -ReplicaUrl 's3://chaos-security-no-bucket/app.db' -Endpoint $proxy.Endpoint -SkipVerify -Credential $credential -Verbose } }
            @{ Label = 'Test-ReplicaRestore -ConfigPath, 403 InvalidAccessKeyId'; Fault = @{ Kind = 'status'; Status = 403; Code = 'InvalidAccessKeyId'; Count = -1 }; Block = { Test-ReplicaRestore -ConfigPath $config -DatabasePath $db2 -MaxLag '5s' -Verbose } }
            @{ Label = 'Start-SqliteReplication -Credential, 403 at start'; Fault = @{ Kind = 'status'; Status = 403; Code = 'AccessDenied'; Count = -1 }; Block = { Start-SqliteReplication -DatabasePath $db @s3Cred -AsJob -Verbose } }
            @{ Label = 'Get-SqliteReplicationStatus -ConfigPath (stopped)'; Block = { Get-SqliteReplicationStatus -ConfigPath $config -Verbose | ConvertTo-Json -Depth 5 } }
        )
        foreach ($call in $calls) {
            Write-ChaosLine 'Security' $call.Label
            if ($call.ContainsKey('Fault')) { $arguments = @{ Proxy = $proxy }; foreach ($k in $call.Fault.Keys) { $arguments[$k] = $call.Fault[$k] }; $null = Set-S3Fault @arguments }
            try { $texts.Add([pscustomobject]@{ Source = $call.Label; Text = (Invoke-CapturedText -Block $call.Block) }) }
            finally { Clear-S3Fault -Proxy $proxy }
        }

        # --- -AsJob with -Credential: the job, its streams and its summary.
        Write-ChaosLine 'Security' 'Start-SqliteReplication -Credential -AsJob'
        $jobText = Invoke-CapturedText -Block {
            $job = Start-SqliteReplication -DatabasePath $db @s3Cred -SyncInterval '200ms' -AsJob -Verbose
            $null = Invoke-Writer write --db $db --count 30 --interval-ms 5
            Start-Sleep -Seconds 2
            $job | Format-List * -Force | Out-String
            $null = Set-S3Fault -Proxy $proxy -Kind status -Status 403 -Code SignatureDoesNotMatch -Count 2 -Match PutObject
            $null = Invoke-Writer write --db $db --count 10
            Start-Sleep -Seconds 2
            Clear-S3Fault -Proxy $proxy
            $job | Stop-Job
            $job | Receive-Job -Keep *>&1
            $job.ChildJobs | ForEach-Object { $_ | Receive-Job -Keep *>&1 }
            $job | ConvertTo-Json -Depth 2 -WarningAction SilentlyContinue
            $job | Remove-Job -Force
        }
        $texts.Add([pscustomobject]@{ Source = 'Start-SqliteReplication -Credential -AsJob (job, streams, summary)'; Text = $jobText })
        $modes.AddRange([object[]]@(Get-ChildItem -LiteralPath $restoreDir -Filter '*.db' | ForEach-Object { Get-UnixModeEntry -Path $_.FullName -Label 'restored database (this process)' }))

        Write-ChaosLine 'Security' 'restore child under umask 000'
        # --- A restore child under umask 000 whose GETs stall: its temporary files are caught on the way.
        $childOut = Join-Path $dir 'child-restore/out.db'
        $childTmp = Join-Path $dir 'tmp-restore'
        $null = New-Item -ItemType Directory -Path $childTmp -Force
        $null = New-Item -ItemType Directory -Path ([System.IO.Path]::GetDirectoryName($childOut)) -Force
        $scanRoots.Add($childTmp); $scanRoots.Add([System.IO.Path]::GetDirectoryName($childOut))
        $null = Set-S3Fault -Proxy $proxy -Kind stall -Seconds 1.5 -Count 4 -Match GetObject
        $script = @"
Import-Module -Name '$($env:SQLITEREPLICA_MODULE.Replace("'", "''"))' -ErrorAction Stop
`$DebugPreference = 'Continue'
`$c = [System.Management.Automation.PSCredential]::new(`$env:CHAOS_USER, (ConvertTo-SecureString -String `$env:CHAOS_PASSWORD -AsPlainText -Force))
Restore-SqliteReplica -ReplicaUrl '$url' -Endpoint '$($proxy.Endpoint)' -SkipVerify -Credential `$c -OutputPath '$childOut' -Verbose *>&1 | ForEach-Object { `$_ | Out-String }
Test-ReplicaRestore -ReplicaUrl '$url' -Endpoint '$($proxy.Endpoint)' -SkipVerify -Credential `$c -KeepRestoredDatabase *>&1 | ForEach-Object { `$_ | Format-List * | Out-String }
"@
        $scriptPath = Join-Path $dir 'restore-child.ps1'
        [System.IO.File]::WriteAllText($scriptPath, $script)
        $pwsh = Get-PwshCommand
        $child = Start-TestProcess -FilePath '/bin/sh' -ArgumentList (@('-c', 'umask 000; exec "$0" "$@"', $pwsh.FilePath) + @($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $scriptPath)) -LogPath (Join-Path $dir 'restore-child.log') -Environment @{ TMPDIR = $childTmp; CHAOS_USER = $secrets['credential user']; CHAOS_PASSWORD = $secrets['credential password'] } -Name 'restore-child' | Register-ChaosChild
        $seen = Watch-TransientFile -Path @($childTmp, [System.IO.Path]::GetDirectoryName($childOut)) -Seconds 30 -Until { $child.HasExited }
        foreach ($f in $seen) { $modes.Add([pscustomobject]@{ Label = 'restore file (transient or final, child under umask 000)'; Path = $f.Path; Kind = 'file'; Mode = $f.Mode; WorldReadable = $f.WorldReadable; GroupReadable = $f.GroupReadable }) }
        $null = $child | Wait-TestProcess -TimeoutSeconds 60
        Clear-S3Fault -Proxy $proxy
        $texts.Add([pscustomobject]@{ Source = 'restore child output (umask 000, -Credential)'; Text = (Read-ChaosText -Path (Join-Path $dir 'restore-child.log')) })
        $modes.AddRange([object[]]@(Get-UnixModeEntry -Path @($childTmp, [System.IO.Path]::GetDirectoryName($childOut)) -Label 'restore output and temporary folder (child, umask 000)' | Where-Object { $_.Path -ne $childTmp -and $_.Path -ne [System.IO.Path]::GetDirectoryName($childOut) -and [System.IO.Path]::GetFileName($_.Path) -notmatch '^(clr-debug-pipe-|dotnet-diagnostic-|CoreFxPipe_)' }))

        # --- Every object in the bucket (the lease object included).
        $scanRoots.Add($ownTmp)
        $objects = @(Get-BucketObjectText -Endpoint $s3.Moto.Endpoint -Bucket $bucket)
        # Proof that the secrets were in use (the proxy redacts key ids): an endpoint that records the
        # Authorization header and answers 403 AccessDenied, asked once with each credential source.
        Write-ChaosLine 'Security' 'key ids seen by a recording endpoint'
        $inUse = @(Test-CredentialsInUse -Dir $dir -Secrets $secrets -Credential $credential -Texts $texts)
        $texts.Add([pscustomobject]@{ Source = "bucket objects ($($objects.Count) objects)"; Text = (($objects | ForEach-Object { $_.Key + "`n" + $_.Text }) -join "`n") })
    }
    finally {
        $DebugPreference = $saved.DebugPreference
        $env:TMPDIR = $saved.TMPDIR
        $env:LITESTREAM_ACCESS_KEY_ID = $saved.LITESTREAM_ACCESS_KEY_ID
        $env:LITESTREAM_SECRET_ACCESS_KEY = $saved.LITESTREAM_SECRET_ACCESS_KEY
        Clear-S3Fault -Proxy $proxy

        # The scan: text sources, then every file under the module's folders, as UTF-8 and UTF-16 bytes.
        $hits = [System.Collections.Generic.List[object]]::new()
        $sources = [System.Collections.Generic.List[object]]::new()
        foreach ($t in $texts) {
            $text = [string]$t.Text
            $found = @(foreach ($name in $secrets.Keys) { if ($text.Contains($secrets[$name], [StringComparison]::Ordinal)) { $name } })
            foreach ($f in $found) { $hits.Add([pscustomobject]@{ Source = $t.Source; Secret = $f; Context = (Get-SecretContext -Text $text -Secret $secrets[$f]) }) }
            $sources.Add([pscustomobject][ordered]@{ Source = $t.Source; Characters = $text.Length; Hits = $found.Count; Secrets = ($found -join ', ') })
        }
        $fileCount = 0; $byteCount = 0L; $fileHits = 0; $lockedFiles = 0
        foreach ($root in @($scanRoots | Select-Object -Unique)) {
            if (-not (Test-Path -LiteralPath $root)) { continue }
            # Regular files only (find -type f): pwsh keeps named pipes in the temporary folder, and opening one blocks.
            foreach ($file in @(& find $root -type f)) {
                # The second lane may remove its temporary files meanwhile.
                try { $bytes = [System.IO.File]::ReadAllBytes($file) } catch [System.IO.FileNotFoundException], [System.IO.DirectoryNotFoundException] { continue }
                catch [System.IO.IOException] { $lockedFiles++; continue }
                $fileCount++
                $byteCount += $bytes.Length
                foreach ($name in $secrets.Keys) {
                    foreach ($encoding in [System.Text.Encoding]::UTF8, [System.Text.Encoding]::Unicode) {
                        if ((Find-Bytes -Haystack $bytes -Needle $encoding.GetBytes($secrets[$name])) -ge 0) {
                            $fileHits++
                            $hits.Add([pscustomobject]@{ Source = "file $([System.IO.Path]::GetRelativePath($dir, $file))"; Secret = $name; Context = "($($encoding.WebName))" })
                        }
                    }
                }
            }
        }
        $sources.Add([pscustomobject][ordered]@{ Source = "files the module wrote ($fileCount files$(if ($lockedFiles) { ", $lockedFiles locked and skipped" }))"; Characters = $byteCount; Hits = $fileHits; Secrets = '' })

        $Result.Figures.Add((New-ChaosFigure -Name 'Key ids the module signed with, seen by a recording endpoint (the secrets were really in use)' -Value ("{0} of 3" -f $inUse.Count) -Goal '3 of 3' -Met ($inUse.Count -eq 3) -Note ($inUse -join ', ')))
        $world = @($modes | Where-Object WorldReadable)
        $group = @($modes | Where-Object { $_.GroupReadable -and -not $_.WorldReadable })
        $Result.Figures.Add((New-ChaosFigure -Name 'Sources scanned (streams, errors, objects, status, metrics, jobs, child output, files, bucket)' -Value $sources.Count -Note ("{0:N0} characters of text, {1} files ({2:N0} bytes)" -f (($sources | Where-Object { $_.Source -notlike 'files *' } | Measure-Object Characters -Sum).Sum), $fileCount, $byteCount)))
        $Result.Figures.Add((New-ChaosFigure -Name 'Secret hits' -Value $hits.Count -Goal '0' -Met ($hits.Count -eq 0 -and $sources.Count -ge 20) -Note (($secrets.Keys | ForEach-Object { $k = $_; "$k $(@($hits | Where-Object Secret -eq $k).Count)" }) -join ', ')))
        $Result.Figures.Add((New-ChaosFigure -Name 'Files and folders the module created, modes checked' -Value $modes.Count -Note (($modes | Group-Object Label | ForEach-Object { "$($_.Name): $(@($_.Group | ForEach-Object Mode | Select-Object -Unique) -join '/')" }) -join '; ')))
        $Result.Figures.Add((New-ChaosFigure -Name 'World-readable files or folders' -Value $world.Count -Goal '0' -Met ($world.Count -eq 0 -and $modes.Count -gt 0) -Note (($world | Select-Object -First 6 | ForEach-Object { "$($_.Label): $([System.IO.Path]::GetFileName($_.Path)) $($_.Mode)" }) -join '; ')))
        $Result.Figures.Add((New-ChaosFigure -Name 'Group-readable (not world-readable) files or folders' -Value $group.Count -Note (($group | Select-Object -First 4 | ForEach-Object { "$($_.Label): $([System.IO.Path]::GetFileName($_.Path)) $($_.Mode)" }) -join '; ')))
        foreach ($h in $hits) { $Result.Findings.Add((New-ChaosFinding -Campaign 'Security' -Title "The $($h.Secret) appears in: $($h.Source)" -Evidence ("context: " + $h.Context.Replace($secrets[$h.Secret], '<' + $h.Secret.ToUpperInvariant().Replace(' ', '-') + '>')))) }
        foreach ($w in ($world | Group-Object Label)) { $Result.Findings.Add((New-ChaosFinding -Campaign 'Security' -Title "World-readable: $($w.Name)" -Evidence (($w.Group | Select-Object -First 5 | ForEach-Object { "$([System.IO.Path]::GetRelativePath($dir, $_.Path)) $($_.Mode)" }) -join '; '))) }
        $Result.RowColumns = @('Source', 'Characters', 'Hits', 'Secrets')
        foreach ($s in $sources) { $Result.Rows.Add($s) }
        foreach ($m in $modes) { $Result.Details.Add([pscustomobject]@{ Label = $m.Label; Path = [System.IO.Path]::GetRelativePath($dir, $m.Path); Mode = $m.Mode; WorldReadable = $m.WorldReadable }) }
    }
}

function Test-CredentialsInUse {
    # Returns the names of the key ids the module really signed with, one request per credential source.
    param([Parameter(Mandatory)][string]$Dir, [Parameter(Mandatory)]$Secrets, [Parameter(Mandatory)]$Credential, [Parameter(Mandatory)]$Texts)
    $record = Join-Path $Dir 'authorization.txt'
    $script = @'
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        with open(sys.argv[2], 'a') as f:
            f.write(self.headers.get('Authorization', '') + '\n')
        body = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'
        self.send_response(403)
        self.send_header('Content-Type', 'application/xml')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)
    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = answer
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
print('port', server.server_address[1], flush=True)
server.serve_forever()
'@
    $recorder = Start-TestProcess -FilePath 'python3' -ArgumentList @('-c', $script, 'x', $record) -LogPath (Join-Path $Dir 'recorder.log') -Name 'recorder' | Register-ChaosChild
    try {
        $port = (Wait-LogLine -Path $recorder.LogPath -Pattern '^port (?<port>\d+)' -TimeoutSeconds 20 -Process $recorder).Groups['port'].Value
        $endpoint = "http://127.0.0.1:$port"
        $config = Join-Path $Dir 'recorder.yml'
        [System.IO.File]::WriteAllText($config, "access-key-id: $($Secrets['config access key id'])`nsecret-access-key: $($Secrets['config secret key'])`ndbs:`n  - path: `"$(Join-Path $Dir 'app.db')`"`n    replicas:`n      - type: s3`n        bucket: chaos-recorder`n        path: app.db`n        endpoint: $endpoint`n")
        $Texts.Add([pscustomobject]@{ Source = 'Get-ReplicaGeneration (variables), 403 from a recording endpoint'; Text = (Invoke-CapturedText -Block { Get-ReplicaGeneration -ReplicaUrl 's3://chaos-recorder/app.db' -Endpoint $endpoint -Verbose }) })
        $Texts.Add([pscustomobject]@{ Source = 'Get-ReplicaGeneration -Credential, 403 from a recording endpoint'; Text = (Invoke-CapturedText -Block { Get-ReplicaGeneration -ReplicaUrl 's3://chaos-recorder/app.db' -Endpoint $endpoint -Credential $Credential -Verbose }) })
        $Texts.Add([pscustomobject]@{ Source = 'Get-ReplicaGeneration -ConfigPath, 403 from a recording endpoint'; Text = (Invoke-CapturedText -Block { Get-ReplicaGeneration -ConfigPath $config -DatabasePath (Join-Path $Dir 'app.db') -Verbose }) })
        $seen = Read-ChaosText -Path $record
        foreach ($name in 'env access key id', 'credential user', 'config access key id') {
            if ($seen.Contains("Credential=$($Secrets[$name])/", [StringComparison]::Ordinal)) { $name }
        }
    }
    finally {
        $null = $recorder | Stop-TestProcess -Signal KILL -TimeoutSeconds 5
    }
}

function Invoke-CapturedText {
    # Runs a block with every stream merged and returns one text holding every record in every form a user could see.
    param([Parameter(Mandatory)][scriptblock]$Block)
    $parts = [System.Collections.Generic.List[string]]::new()
    try {
        $records = @(& $Block *>&1)
    }
    catch {
        $records = @($_)
    }
    foreach ($r in $records) {
        $parts.Add((Format-CapturedRecord $r))
    }
    $parts -join "`n"
}

function Format-CapturedRecord {
    param([AllowNull()]$Record)
    if ($null -eq $Record) { return '' }
    $out = [System.Collections.Generic.List[string]]::new()
    if ($Record -is [System.Management.Automation.ErrorRecord]) {
        $out.Add("ERROR $($Record.FullyQualifiedErrorId)")
        $out.Add($Record.ToString())
        $out.Add([string]$Record.ErrorDetails)
        $out.Add($Record.Exception.ToString())
        $out.Add(($Record | Format-List * -Force | Out-String -Width 400))
        $out.Add(($Record.Exception | Format-List * -Force | Out-String -Width 400))
        $inner = $Record.Exception.InnerException
        while ($inner) { $out.Add(($inner | Format-List * -Force | Out-String -Width 400)); $inner = $inner.InnerException }
        try { $out.Add(($Record.TargetObject | ConvertTo-Json -Depth 3 -WarningAction SilentlyContinue)) } catch { }
    }
    elseif ($Record -is [System.Management.Automation.InformationalRecord]) {
        $out.Add("$($Record.GetType().Name) $($Record.Message)")
    }
    elseif ($Record -is [string]) {
        $out.Add($Record)
    }
    else {
        $out.Add([string]$Record)
        try { $out.Add(($Record | ConvertTo-Json -Depth 4 -WarningAction SilentlyContinue)) } catch { }
        $out.Add(($Record | Format-List * -Force | Out-String -Width 400))
    }
    $out -join "`n"
}

function Get-SecretContext {
    param([string]$Text, [string]$Secret)
    $at = $Text.IndexOf($Secret, [StringComparison]::Ordinal)
    if ($at -lt 0) { return '' }
    $from = [Math]::Max(0, $at - 80)
    Limit-Text $Text.Substring($from, [Math]::Min($Text.Length - $from, $Secret.Length + 160)) 300
}

function Find-Bytes {
    param([byte[]]$Haystack, [byte[]]$Needle)
    # Latin-1 maps every byte to one character, so a string search is an exact byte search.
    [System.Text.Encoding]::Latin1.GetString($Haystack).IndexOf([System.Text.Encoding]::Latin1.GetString($Needle), [StringComparison]::Ordinal)
}

function Watch-TransientFile {
    <#
    .SYNOPSIS
        Polls folders every 20 ms for up to -Seconds (or until -Until is true) and returns every file seen with the mode it had.
    #>
    param([Parameter(Mandatory)][string[]]$Path, [double]$Seconds = 10, [scriptblock]$Until)
    $seen = @{}
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    while ($watch.Elapsed.TotalSeconds -lt $Seconds) {
        foreach ($p in $Path) {
            if (-not [System.IO.Directory]::Exists($p)) { continue }
            foreach ($f in [System.IO.Directory]::EnumerateFiles($p, '*', [System.IO.SearchOption]::AllDirectories)) {
                if ($seen.ContainsKey($f)) { continue }
                # The .NET runtime's and pwsh's own diagnostic pipes and sockets, not the module's files.
                if ([System.IO.Path]::GetFileName($f) -match '^(clr-debug-pipe-|dotnet-diagnostic-|CoreFxPipe_)') { continue }
                try { $mode = [System.IO.File]::GetUnixFileMode($f) } catch { continue }
                $seen[$f] = [pscustomobject]@{
                    Path          = $f
                    Mode          = [Convert]::ToString([int]$mode, 8).PadLeft(4, '0')
                    WorldReadable = [bool]($mode -band [System.IO.UnixFileMode]::OtherRead)
                    GroupReadable = [bool]($mode -band [System.IO.UnixFileMode]::GroupRead)
                }
            }
        }
        if ($Until -and (& $Until)) { break }
        Start-Sleep -Milliseconds 20
    }
    @($seen.Values)
}

function Get-BucketObjectText {
    # Every object of a bucket, read from moto directly: key and content as text (non-UTF-8 bytes as they decode).
    param([Parameter(Mandatory)][string]$Endpoint, [Parameter(Mandatory)][string]$Bucket)
    $client = [System.Net.Http.HttpClient]::new()
    # moto checks no signature, but serves objects only to a request that names a key id.
    $null = $client.DefaultRequestHeaders.TryAddWithoutValidation('Authorization', 'AWS4-HMAC-SHA256 Credential=AKIACHAOSREADER/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00')
    try {
        $xml = $client.GetStringAsync("$Endpoint/$Bucket`?list-type=2&max-keys=1000").GetAwaiter().GetResult()
        foreach ($m in [regex]::Matches($xml, '<Key>([^<]*)</Key>')) {
            $key = [System.Net.WebUtility]::HtmlDecode($m.Groups[1].Value)
            $bytes = $client.GetByteArrayAsync("$Endpoint/$Bucket/" + (($key -split '/' | ForEach-Object { [uri]::EscapeDataString($_) }) -join '/')).GetAwaiter().GetResult()
            [pscustomobject]@{ Key = $key; Text = [System.Text.Encoding]::UTF8.GetString($bytes) }
        }
    }
    finally { $client.Dispose() }
}

#Requires -Version 7.6
# S3 replicas end to end: moto_server on loopback, and in front of it the S3 test proxy
# (tests/S3Proxy) serving HTTPS with a test certificate. The proxy fails every request
# Cloudflare R2 would refuse (aws-chunked or streaming payloads, checksum headers, more than two
# concurrent parts of one upload...), counts requests by operation and injects faults on demand,
# so these tests exercise the exact request shape used against R2.
#
# The replicator runs as a separate pwsh process, the application is the separate writer process
# (tests/SqliteWriter), and restores are compared with the source by the writer's content digest.
# Run through `build.ps1 Test`, which sets SQLITEREPLICA_MODULE, SQLITEREPLICA_WRITER and
# SQLITEREPLICA_LITESTREAM; the proxy is found through SQLITEREPLICA_S3PROXY or out/tools/S3Proxy.

Describe 'S3 replicas through an R2-strict HTTPS proxy in front of moto_server' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'IntegrationHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'S3Fixture.psm1') -Force
        Import-Module -Name $env:SQLITEREPLICA_MODULE -Force -ErrorAction Stop

        # Any credentials do for moto; the replicator reads them from these variables.
        $script:SavedCredentials = @{
            LITESTREAM_ACCESS_KEY_ID     = $env:LITESTREAM_ACCESS_KEY_ID
            LITESTREAM_SECRET_ACCESS_KEY = $env:LITESTREAM_SECRET_ACCESS_KEY
        }
        $env:LITESTREAM_ACCESS_KEY_ID = 'AKIASQLITEREPLICATEST'
        $env:LITESTREAM_SECRET_ACCESS_KEY = 'sqlitereplica-test-secret'

        $script:Moto = Start-MotoServer -LogPath (Join-Path $TestDrive 'moto/moto.log')
        $script:Proxy = Start-S3Proxy -Upstream $Moto.Endpoint -LogPath (Join-Path $TestDrive 's3proxy/s3proxy.log')
        # Processes of the running test (replicators, writers, litestream), killed after each test.
        $script:Children = [System.Collections.Generic.List[object]]::new()

        function New-S3Scenario {
            # A directory in TestDrive and a fresh bucket (created on moto directly, so the proxy does not count it).
            param([Parameter(Mandatory)][string]$Name)
            $dir = Join-Path $TestDrive $Name
            $null = New-Item -ItemType Directory -Path $dir -Force
            $bucket = ('sr-{0}-{1}' -f $Name, [guid]::NewGuid().ToString('N').Substring(0, 8)).ToLowerInvariant()
            $null = New-S3Bucket -Endpoint $Moto.Endpoint -Name $bucket
            [pscustomobject]@{
                Dir    = $dir
                Db     = Join-Path $dir 'app.db'
                Log    = Join-Path $dir 'replicator.log'
                Bucket = $bucket
                Url    = "s3://$bucket/app.db"
            }
        }

        function Start-S3Replicator {
            # Start-SqliteReplication @Parameters in a separate pwsh (own process group), every
            # record rendered as one log line: VERBOSE:/WARNING:/DEBUG: lines, 'SUMMARY {json}' per
            # summary and 'ERRORID <id>' per error (IntegrationHelpers' Get-ReplicatorSummary and
            # Get-ReplicatorErrorId read them); exit 1 when the cmdlet failed. Unlike
            # Start-TestReplicator it adds no parameters, so -ConfigPath works.
            param(
                [Parameter(Mandatory)][hashtable]$Parameters,
                [Parameter(Mandatory)][string]$LogPath,
                [hashtable]$Environment,
                [switch]$NoWait,
                # Debug records into the log (retries of single requests are logged at debug level).
                # Not -Debug: on a compiled cmdlet it makes warnings and errors prompt (Inquire),
                # which fails in a non-interactive pwsh.
                [switch]$DebugOutput,
                [double]$TimeoutSeconds = 60
            )
            $all = @{ Verbose = $true }
            foreach ($key in $Parameters.Keys) { $all[$key] = $Parameters[$key] }
            $parametersPath = "$LogPath.parameters.xml"
            $all | Export-Clixml -LiteralPath $parametersPath -Depth 5
            $quote = { param($s) "'" + $s.Replace("'", "''") + "'" }
            $script = @"
Import-Module -Name $(& $quote $env:SQLITEREPLICA_MODULE) -ErrorAction Stop
`$parameters = Import-Clixml -LiteralPath $(& $quote $parametersPath)
`$DebugPreference = '$(if ($DebugOutput) { 'Continue' } else { 'SilentlyContinue' })'
`$failed = `$false
try {
    Start-SqliteReplication @parameters *>&1 | ForEach-Object {
        `$record = `$_
        switch (`$record) {
            { `$_ -is [System.Management.Automation.VerboseRecord] } { 'VERBOSE: ' + `$record.Message; break }
            { `$_ -is [System.Management.Automation.WarningRecord] } { 'WARNING: ' + `$record.Message; break }
            { `$_ -is [System.Management.Automation.DebugRecord] } { 'DEBUG: ' + `$record.Message; break }
            { `$_ -is [System.Management.Automation.InformationRecord] } { 'INFO: ' + `$record; break }
            { `$_ -is [System.Management.Automation.ErrorRecord] } {
                `$script:failed = `$true
                'ERRORID ' + `$record.FullyQualifiedErrorId
                'ERROR: ' + `$record.Exception.Message
                break
            }
            default { 'SUMMARY ' + (`$record | Select-Object -Property * | ConvertTo-Json -Compress -Depth 3) }
        }
    }
}
catch {
    'ERRORID ' + `$_.FullyQualifiedErrorId
    'ERROR: ' + `$_.Exception.Message
    exit 1
}
if (`$failed) { exit 1 }
exit 0
"@
            $process = Start-PwshProcess -Script $script -LogPath $LogPath -Environment $Environment -Name 'replicator'
            $Children.Add($process)
            if (-not $NoWait) {
                $null = Wait-LogLine -Path $LogPath -Pattern '^VERBOSE: replicating ' -TimeoutSeconds $TimeoutSeconds -Process $process
            }
            $process
        }

        function Start-S3Writer {
            param([Parameter(Mandatory, ValueFromRemainingArguments)][object[]]$ArgumentList, [Parameter(Mandatory)][string]$StdoutPath)
            $writer = Start-Writer -ArgumentList $ArgumentList -StdoutPath $StdoutPath
            $Children.Add($writer)
            $writer
        }

        function Invoke-ChildPwsh {
            # Runs a script with the module imported in a fresh pwsh and returns its output lines; throws on a non-zero exit.
            param([Parameter(Mandatory)][string]$Script, [hashtable]$Environment, [double]$TimeoutSeconds = 120)
            $path = Join-Path $TestDrive ("child-{0}.ps1" -f [guid]::NewGuid().ToString('N').Substring(0, 8))
            $text = @(
                '$ErrorActionPreference = ''Stop'''
                '$ProgressPreference = ''SilentlyContinue'''
                "Import-Module -Name '$($env:SQLITEREPLICA_MODULE.Replace("'", "''"))' -ErrorAction Stop"
                $Script
            ) -join [Environment]::NewLine
            [System.IO.File]::WriteAllText($path, $text)
            $pwsh = Get-PwshCommand
            $result = Invoke-NativeProcess -FilePath $pwsh.FilePath -ArgumentList (@($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $path)) -Environment $Environment -TimeoutSeconds $TimeoutSeconds -MergeStandardError
            if ($result.ExitCode -ne 0) { throw "The child pwsh failed (exit $($result.ExitCode)):$([Environment]::NewLine)$($result.StdOut)" }
            $result.Lines
        }

        function Restore-S3Replica {
            # Restore-SqliteReplica (in this process) through the proxy into a fresh file; returns Result, Dump and Path.
            param([Parameter(Mandatory)][string]$Url, [hashtable]$Extra = @{}, [string]$Endpoint = $Proxy.Endpoint)
            $target = New-RestoreTarget -Parent $TestDrive
            $result = Restore-SqliteReplica -ReplicaUrl $Url -Endpoint $Endpoint -SkipVerify -OutputPath $target @Extra -ErrorAction Stop
            [pscustomobject]@{ Result = $result; Dump = Get-DbDump -Path $target; Path = $target }
        }

        function Get-ErrorRecord {
            # Runs a script block with errors made terminating and returns the first error record, or $null.
            param([Parameter(Mandatory)][scriptblock]$ScriptBlock)
            $ErrorActionPreference = 'Stop'
            try {
                $null = & $ScriptBlock
            }
            catch {
                return $_
            }
            $null
        }

        function Assert-R2RequestShape {
            # No request was refused as R2 would refuse it, and every upload used UNSIGNED-PAYLOAD over HTTPS.
            param([Parameter(Mandatory, Position = 0)]$Counters)
            $Counters.rejected.count | Should -Be 0 -Because "R2 would refuse these requests: $($Counters.rejected | ConvertTo-Json -Depth 6 -Compress)"
            foreach ($mode in 'streaming', 'signed', 'none') {
                $found = $Counters.payload.PSObject.Properties[$mode]
                $(if ($found) { $found.Value } else { 0 }) | Should -Be 0 -Because "uploads over HTTPS must be UNSIGNED-PAYLOAD, not chunked or signed (payload modes seen: $($Counters.payload | ConvertTo-Json -Compress))"
            }
        }

        function Wait-FaultHit {
            # Waits until the proxy has injected at least -Count faults of -Kind since the last counter reset.
            param([Parameter(Mandatory)][string]$Kind, [Parameter(Mandatory)][int]$Count, [double]$TimeoutSeconds = 60)
            Wait-Until -TimeoutSeconds $TimeoutSeconds -Message "$Count '$Kind' fault(s) injected by the proxy" -Condition {
                $hit = (Get-S3Counters -Proxy $Proxy).faults.byKind.PSObject.Properties[$Kind]
                $hit -and $hit.Value -ge $Count
            }
        }

        function Wait-ProxyQuiet {
            # Waits until the proxy has seen no new request for -QuietSeconds.
            param([double]$QuietSeconds = 1.5, [double]$TimeoutSeconds = 60)
            $state = @{ Total = -1; Since = [System.Diagnostics.Stopwatch]::StartNew() }
            Wait-Until -TimeoutSeconds $TimeoutSeconds -IntervalMilliseconds 250 -Message "no S3 request for $QuietSeconds s" -Condition {
                $c = Get-S3Counters -Proxy $Proxy
                if ($c.total -ne $state.Total -or $c.inFlight -gt 0) { $state.Total = $c.total; $state.Since.Restart(); return $false }
                $state.Since.Elapsed.TotalSeconds -ge $QuietSeconds
            }
        }

        function Format-Requests {
            param([object[]]$Records)
            (@($Records) | Where-Object { $null -ne $_ } | ForEach-Object { '{0,9:F0}ms {1} {2} {3} -> {4}{5}' -f $_.atMs, $_.operation, $_.method, $_.target, $_.status, $(if ($_.PSObject.Properties['fault']) { " fault=$($_.fault)" } else { '' }) }) -join [Environment]::NewLine
        }
    }

    AfterEach {
        foreach ($child in @($Children)) {
            if (-not $child.HasExited) { $null = $child | Stop-TestProcess -Signal KILL -TimeoutSeconds 5 }
        }
        $Children.Clear()
        Clear-S3Fault -Proxy $Proxy
    }

    AfterAll {
        Stop-TestProcess -All -Signal KILL -TimeoutSeconds 5
        Stop-S3Fixture -All
        foreach ($name in $SavedCredentials.Keys) { [Environment]::SetEnvironmentVariable($name, $SavedCredentials[$name]) }
        Remove-Module -Name SqliteReplica -Force -ErrorAction Ignore
    }

    Context 'Replication in the R2 request shape' {
        It 'replicates while the writer writes; after SIGTERM a restore equals the source, and no request broke an R2 rule' {
            $s = New-S3Scenario -Name 'basic'
            $null = New-TestDatabase -Path $s.Db -Rows 20
            Reset-S3Counters -Proxy $Proxy
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{
                DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true
                SyncInterval = '200ms'; MonitorInterval = '100ms'
            }
            $writer = Start-S3Writer write --db $s.Db --count 0 --interval-ms 2 --rows-per-tx 3 -StdoutPath (Join-Path $s.Dir 'writer.out')
            $null = $writer | Wait-WriterProgress -MinimumId 400 -TimeoutSeconds 60
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -TimeoutSeconds 30 -Process $replicator

            $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0
            $lastId = $writer.GetLastCommittedId()
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $s.Log)
            $summary = @(Get-ReplicatorSummary -LogPath $s.Log)
            $summary.Count | Should -Be 1
            $summary[0].CaughtUp | Should -BeTrue -Because (Get-LogTail -Path $s.Log)

            $source = Get-DbDump -Path $s.Db
            $source.maxId | Should -Be $lastId
            $restored = Restore-S3Replica -Url $s.Url
            $restored.Dump.integrity | Should -Be 'ok'
            $restored.Dump.digest | Should -Be $source.digest
            $restored.Result.Position | Should -Be $summary[0].ConfirmedPosition
            @(Get-ReplicaSnapshot -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify).Count | Should -BeGreaterOrEqual 1

            $counters = Get-S3Counters -Proxy $Proxy
            Assert-R2RequestShape $counters
            Get-S3OperationCount $counters PutObject | Should -BeGreaterThan 1
            Get-S3OperationCount $counters GetObject | Should -BeGreaterThan 0
        }

        It 'uploads a snapshot above the multipart threshold in parts, never more than two at a time, and restores it' {
            $s = New-S3Scenario -Name 'multipart'
            $null = New-TestDatabase -Path $s.Db
            # About 21 MB of incompressible pages: the LZ4 snapshot is above the 16 MiB multipart threshold.
            $null = Invoke-Writer bigtx --db $s.Db --pages 5200
            $null = Invoke-Writer exec --db $s.Db --sql 'PRAGMA wal_checkpoint(TRUNCATE)'
            Reset-S3Counters -Proxy $Proxy
            # One part answered 503 and one dropped: each is retried on its own.
            $null = Set-S3Fault -Proxy $Proxy -Kind status -Status 503 -Count 1 -Match UploadPart
            $null = Set-S3Fault -Proxy $Proxy -Kind reset -Count 1 -Match UploadPart
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{
                DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true; SyncInterval = '200ms'
            }
            $null = Wait-LogLine -Path $s.Log -Pattern 'snapshot written' -TimeoutSeconds 120 -Process $replicator
            $replicator | Stop-TestReplicator -TimeoutSeconds 60 | Should -Be 0 -Because (Get-LogTail -Path $s.Log)

            $counters = Get-S3Counters -Proxy $Proxy
            Assert-R2RequestShape $counters
            Get-S3OperationCount $counters CreateMultipartUpload | Should -BeGreaterOrEqual 1
            Get-S3OperationCount $counters UploadPart | Should -BeGreaterOrEqual 5
            $counters.faults.injected | Should -Be 2
            Get-S3OperationCount $counters CompleteMultipartUpload | Should -Be (Get-S3OperationCount $counters CreateMultipartUpload)
            Get-S3OperationCount $counters AbortMultipartUpload | Should -Be 0
            $counters.maxPartsInFlight | Should -BeLessOrEqual 2
            $snapshot = @(Get-ReplicaSnapshot -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify)
            $snapshot[-1].Size | Should -BeGreaterThan (16MB)

            $restored = Restore-S3Replica -Url $s.Url
            $restored.Dump.integrity | Should -Be 'ok'
            $restored.Dump.digest | Should -Be (Get-DbDump -Path $s.Db).digest
        }

        It 'loads the issue''s R2 sample configuration unchanged but for endpoint, bucket, path and database, and replicates with it' {
            $s = New-S3Scenario -Name 'sample'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            # The sample from the issue (a Cloudflare R2 bucket). Only the three values a user
            # must change (endpoint, bucket, database path) are replaced; TLS is verified against the proxy's certificate, which
            # the child processes trust through SSL_CERT_FILE (no skip-verify needed).
            $sample = @'
access-key-id: ${LITESTREAM_ACCESS_KEY_ID}
secret-access-key: ${LITESTREAM_SECRET_ACCESS_KEY}
dbs:
  - path: /pb/pb_data/data.db
    replicas:
      - type: s3
        endpoint: https://<accountid>.r2.cloudflarestorage.com
        bucket: my-pb-backups
        path: taxwalaai/data.db
        region: auto
        force-path-style: true
        snapshot-interval: 12h
        retention: 72h
'@
            $config = Join-Path $s.Dir 'litestream.yml'
            $text = $sample.Replace('path: /pb/pb_data/data.db', "path: $($s.Db)").
                Replace('bucket: my-pb-backups', "bucket: $($s.Bucket)").
                Replace('endpoint: https://<accountid>.r2.cloudflarestorage.com', "endpoint: $($Proxy.Endpoint)")
            [System.IO.File]::WriteAllText($config, $text)
            @(Compare-Object ($sample -split "`r?`n") ($text -split "`r?`n")).Count | Should -Be 6 -Because 'only the endpoint, bucket and db path lines differ from the issue sample'
            $trust = @{ SSL_CERT_FILE = $Proxy.CertificatePath }

            Reset-S3Counters -Proxy $Proxy
            $replicator = Start-S3Replicator -LogPath $s.Log -Environment $trust -Parameters @{ ConfigPath = $config }
            $out = Invoke-Writer write --db $s.Db --count 150 --interval-ms 5 --rows-per-tx 2
            @($out)[-1] | Should -Be 'done 150'
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -TimeoutSeconds 30 -Process $replicator
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $s.Log)
            $summary = @(Get-ReplicatorSummary -LogPath $s.Log)
            $summary.Count | Should -Be 1
            $summary[0].CaughtUp | Should -BeTrue

            # The replicator's own request counters (kept for status and metrics) match what the
            # store actually received: only the replicator talked to the proxy since the reset.
            $served = Get-S3Counters -Proxy $Proxy
            $summary[0].PutRequests | Should -Be (Get-S3OperationCount $served 'put' -Category) -Because 'PUT requests counted by the replicator = received by the store'
            $summary[0].GetRequests | Should -Be (Get-S3OperationCount $served 'get' -Category) -Because 'GET requests counted by the replicator = received by the store'
            $summary[0].ListRequests | Should -Be (Get-S3OperationCount $served 'list' -Category) -Because 'LIST requests counted by the replicator = received by the store'
            # The summary is written just before the replicator releases its lease (one DELETE more).
            ($summary[0].DeleteRequests + 1) | Should -Be (Get-S3OperationCount $served 'delete' -Category) -Because 'DELETE requests counted by the replicator, plus the lease release after the summary = received by the store'
            $summary[0].MultipartRequests | Should -Be (Get-S3OperationCount $served 'multipart' -Category) -Because 'multipart requests counted by the replicator = received by the store'

            # Restore and list with the same file, in a child that trusts the certificate the same way.
            $target = Join-Path $s.Dir 'restored.db'
            $lines = Invoke-ChildPwsh -Environment $trust -Script @"
`$result = Restore-SqliteReplica -ConfigPath '$config' -DatabasePath '$($s.Db)' -OutputPath '$target'
`$snapshots = @(Get-ReplicaSnapshot -ConfigPath '$config' -DatabasePath '$($s.Db)')
'RESULT ' + (@{ Position = `$result.Position; Snapshots = `$snapshots.Count } | ConvertTo-Json -Compress)
"@
            $result = (@($lines) | Where-Object { $_ -like 'RESULT *' } | Select-Object -Last 1).Substring(7) | ConvertFrom-Json
            $result.Snapshots | Should -BeGreaterOrEqual 1
            $result.Position | Should -Be $summary[0].ConfirmedPosition
            (Get-DbDump -Path $target).digest | Should -Be (Get-DbDump -Path $s.Db).digest

            $counters = Get-S3Counters -Proxy $Proxy
            Assert-R2RequestShape $counters
            $signed = @(Get-S3ProxyRequest -Proxy $Proxy -Operation PutObject)
            $signed.Count | Should -BeGreaterThan 0
            @($signed | Where-Object { $_.headers.Authorization -notlike '*/auto/s3/aws4_request*' }) | Should -BeNullOrEmpty -Because 'requests are signed for region auto'
        }

        It 'replicates several databases of one configuration in one process; SIGTERM to pwsh leaves every committed transaction in the bucket' {
            $s = New-S3Scenario -Name 'multidb'
            $names = 'alpha', 'beta', 'gamma'
            $dbs = foreach ($name in $names) { (New-TestDatabase -Path (Join-Path $s.Dir "$name.db") -Rows 5).Path }
            # A long sync interval: what the writers commit last is left for the final sync that
            # SIGTERM starts.
            $yaml = [System.Text.StringBuilder]::new()
            $null = $yaml.AppendLine('access-key-id: ${LITESTREAM_ACCESS_KEY_ID}').AppendLine('secret-access-key: ${LITESTREAM_SECRET_ACCESS_KEY}').AppendLine('dbs:')
            for ($i = 0; $i -lt $dbs.Count; $i++) {
                $null = $yaml.AppendLine("  - path: `"$($dbs[$i])`"").AppendLine('    monitor-interval: 100ms').AppendLine('    replicas:').
                    AppendLine('      - type: s3').AppendLine("        bucket: $($s.Bucket)").AppendLine("        path: multi/$($names[$i]).db").
                    AppendLine("        endpoint: $($Proxy.Endpoint)").AppendLine('        region: auto').AppendLine('        force-path-style: true').
                    AppendLine('        skip-verify: true').AppendLine('        sync-interval: 10s')
            }
            $config = Join-Path $s.Dir 'litestream.yml'
            [System.IO.File]::WriteAllText($config, $yaml.ToString())

            Reset-S3Counters -Proxy $Proxy
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{ ConfigPath = $config }
            $null = Wait-LogLine -Path $s.Log -Pattern '^VERBOSE: replicating ' -Count 3 -TimeoutSeconds 30 -Process $replicator
            $writers = for ($i = 0; $i -lt $dbs.Count; $i++) {
                Start-S3Writer write --db $dbs[$i] --count 0 --interval-ms 3 --rows-per-tx 2 -StdoutPath (Join-Path $s.Dir "writer-$($names[$i]).out")
            }
            foreach ($writer in $writers) { $null = $writer | Wait-WriterProgress -MinimumId 300 -TimeoutSeconds 60 }
            foreach ($writer in $writers) { $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0 }

            # SIGTERM to the pwsh process itself, at once: the last commits are not uploaded yet.
            Send-ProcessGroupSignal -ProcessId $replicator.Pid -Signal TERM
            $null = Wait-ProcessGroupExit -Pgid $replicator.Pgid -TimeoutSeconds 30
            $replicator.Process.WaitForExit(10000) | Should -BeTrue
            $replicator.Process.ExitCode | Should -Be 0 -Because (Get-LogTail -Path $s.Log)
            $summaries = @(Get-ReplicatorSummary -LogPath $s.Log)
            $summaries.Count | Should -Be 3
            $summaries | ForEach-Object { $_.CaughtUp | Should -BeTrue -Because ($summaries | ConvertTo-Json -Compress) }

            for ($i = 0; $i -lt $dbs.Count; $i++) {
                $target = New-RestoreTarget -Parent $TestDrive
                $null = Restore-SqliteReplica -ConfigPath $config -DatabasePath $dbs[$i] -OutputPath $target -ErrorAction Stop
                $restored = Get-DbDump -Path $target
                $restored.maxId | Should -Be $writers[$i].GetLastCommittedId() -Because "every transaction committed in $($names[$i]).db must be in the bucket"
                $restored.digest | Should -Be (Get-DbDump -Path $dbs[$i]).digest
            }
            Assert-R2RequestShape (Get-S3Counters -Proxy $Proxy)
        }

        It 'applies retention with delete requests R2 accepts' {
            $s = New-S3Scenario -Name 'retention'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            Reset-S3Counters -Proxy $Proxy
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{
                DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true
                SyncInterval = '200ms'; SnapshotInterval = '1s'; Retention = '2s'; RetentionCheckInterval = '1s'
                # Frequent checkpoints start new WAL indexes, so older indexes fall out of retention.
                MinCheckpointPageCount = 20
            }
            $writer = Start-S3Writer write --db $s.Db --count 0 --interval-ms 20 --blob-bytes 2000 -StdoutPath (Join-Path $s.Dir 'writer.out')
            # Until a retention pass deleted a snapshot, or the proxy refused a delete as R2 would.
            # (A pass can delete WAL segments alone: waiting for any 'retention deleted' line once
            # ended the wait with no snapshot deleted yet, and the count below failed.)
            $null = Wait-Until -TimeoutSeconds 30 -Message 'a retention pass to delete a snapshot' -Condition {
                (Get-S3Counters -Proxy $Proxy).rejected.count -gt 0 -or (Get-Content -LiteralPath $s.Log -Raw) -match 'retention deleted [1-9][0-9]* snapshot'
            }
            Start-Sleep -Seconds 2
            $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $s.Log)

            $counters = Get-S3Counters -Proxy $Proxy
            Assert-R2RequestShape $counters
            Get-Content -LiteralPath $s.Log -Raw | Should -Match 'retention deleted' -Because (Get-LogTail -Path $s.Log)
            $written = @(Select-String -LiteralPath $s.Log -Pattern 'snapshot written').Count
            @(Get-ReplicaSnapshot -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify).Count | Should -BeLessThan $written -Because 'snapshots older than the retention period are deleted'
            $restored = Restore-S3Replica -Url $s.Url
            $restored.Dump.digest | Should -Be (Get-DbDump -Path $s.Db).digest
        }
    }

    Context 'Faults' {
        It 'recovers by itself from 503 bursts, SlowDown, 429, connection resets, a stall past the request timeout and an outage, during continuous writes' {
            $s = New-S3Scenario -Name 'faults'
            $null = New-TestDatabase -Path $s.Db -Rows 20
            Reset-S3Counters -Proxy $Proxy
            $replicator = Start-S3Replicator -LogPath $s.Log -DebugOutput -Parameters @{
                DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true
                SyncInterval = '200ms'; MonitorInterval = '100ms'
            }
            $writer = Start-S3Writer write --db $s.Db --count 0 --interval-ms 10 --rows-per-tx 2 -StdoutPath (Join-Path $s.Dir 'writer.out')
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -TimeoutSeconds 30 -Process $replicator

            $null = Set-S3Fault -Proxy $Proxy -Kind status -Status 503 -Count 4 -Match PutObject
            Wait-FaultHit -Kind status -Count 4
            $null = Set-S3Fault -Proxy $Proxy -Kind status -Status 503 -Code SlowDown -Message 'Please reduce your request rate.' -Count 3 -Match PUT
            Wait-FaultHit -Kind status -Count 7
            $null = Set-S3Fault -Proxy $Proxy -Kind status -Status 429 -Code TooManyRequests -Count 2
            Wait-FaultHit -Kind status -Count 9
            $null = Set-S3Fault -Proxy $Proxy -Kind reset -Count 3 -Match PutObject
            Wait-FaultHit -Kind reset -Count 3
            # Held longer than the client's 30 s request timeout: the client must give up and retry.
            $null = Set-S3Fault -Proxy $Proxy -Kind stall -Seconds 45 -Count 1 -Match PutObject
            Wait-FaultHit -Kind stall -Count 1
            $offset = (Get-Item -LiteralPath $s.Log).Length
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -Offset $offset -TimeoutSeconds 75 -Process $replicator
            $null = Set-S3Fault -Proxy $Proxy -Kind down -Seconds 3
            Start-Sleep -Seconds 3
            $offset = (Get-Item -LiteralPath $s.Log).Length
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -Offset $offset -TimeoutSeconds 60 -Process $replicator

            $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0
            $source = Get-DbDump -Path $s.Db
            # Caught up by itself, before any final sync: the bucket alone restores the source.
            $null = Wait-Until -TimeoutSeconds 60 -IntervalMilliseconds 1000 -Message 'the replica to catch up with the source by itself' -Condition {
                (Restore-S3Replica -Url $s.Url).Dump.digest -eq $source.digest
            }
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $s.Log)
            $summary = @(Get-ReplicatorSummary -LogPath $s.Log)
            $summary[0].CaughtUp | Should -BeTrue

            $counters = Get-S3Counters -Proxy $Proxy
            Assert-R2RequestShape $counters
            $counters.faults.byKind.status | Should -Be 9
            $counters.faults.byKind.reset | Should -Be 3
            $counters.faults.byKind.stall | Should -Be 1
            $counters.faults.byKind.down | Should -Be 1
        }

        It 'restores correctly while downloads are cut short or dropped (each is retried)' {
            $s = New-S3Scenario -Name 'truncate'
            $null = New-TestDatabase -Path $s.Db -Rows 50
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{
                DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true; SyncInterval = '200ms'
            }
            foreach ($batch in 1..4) {
                $null = Invoke-Writer write --db $s.Db --count 100 --rows-per-tx 5 --blob-bytes 300
                Start-Sleep -Milliseconds 400
            }
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $s.Log)
            $source = Get-DbDump -Path $s.Db

            Reset-S3Counters -Proxy $Proxy
            $null = Set-S3Fault -Proxy $Proxy -Kind truncate -Count 1 -PathContains '/snapshots/'
            $null = Set-S3Fault -Proxy $Proxy -Kind truncate -Count 2 -PathContains '/wal/'
            $null = Set-S3Fault -Proxy $Proxy -Kind reset -Count 1 -Match GetObject -Skip 3
            $target = New-RestoreTarget -Parent $TestDrive
            $failure = Get-ErrorRecord { Restore-SqliteReplica -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify -OutputPath $target }
            $counters = Get-S3Counters -Proxy $Proxy
            $failure | Should -BeNullOrEmpty -Because "a cut download must be retried, not fail the restore ($(if ($failure) { "$($failure.FullyQualifiedErrorId): $($failure.Exception.Message)" })); requests:$([Environment]::NewLine)$(Format-Requests (Get-S3ProxyRequest -Proxy $Proxy))"
            $counters.faults.byKind.truncate | Should -Be 3
            (Get-DbDump -Path $target).digest | Should -Be $source.digest
        }
        It 'reports an empty WAL segment object as SegmentCorrupt (downloads ask for "bytes=0-", which an empty object cannot answer), and writes nothing' {
            $s = New-S3Scenario -Name 'emptyobj'
            $null = New-TestDatabase -Path $s.Db -Rows 20
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{
                DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true; SyncInterval = '200ms'
            }
            $null = Invoke-Writer write --db $s.Db --count 40 --rows-per-tx 5
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $s.Log)
            $segment = @(Get-ReplicaWalSegment -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify | Sort-Object Index, Offset)[-1]
            $segment | Should -Not -BeNullOrEmpty
            # An empty object as the first segment of a next WAL index (moto takes an unsigned PUT of a new key).
            $key = 'app.db/generations/{0}/wal/{1:x8}_00000000.wal.lz4' -f $segment.Generation, ($segment.Index + 1)
            $put = Invoke-FixtureHttp -Method PUT -Uri "$($Moto.Endpoint)/$($s.Bucket)/$key"
            $put.Status | Should -Be 200 -Because "$($put.Body) $(Get-LogTail -Path $Moto.LogPath -Lines 3)"

            Reset-S3Counters -Proxy $Proxy
            $target = New-RestoreTarget -Parent $TestDrive
            $failure = Get-ErrorRecord { Restore-SqliteReplica -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify -OutputPath $target }
            $failure | Should -Not -BeNullOrEmpty
            $failure.FullyQualifiedErrorId | Should -BeLike 'SegmentCorrupt,*'
            $failure.Exception.Message | Should -Match ([regex]::Escape($key.Substring('app.db/'.Length)))
            Test-Path -LiteralPath $target | Should -BeFalse
            # The whole objects were asked for by range: no GET of this restore went without one but the empty object's second try.
            $gets = @(Get-S3ProxyRequest -Proxy $Proxy | Where-Object { $_.method -eq 'GET' -and $_.target -like '*.lz4' })
            $gets.Count | Should -BeGreaterThan 1
            @($gets | Where-Object { -not $_.headers.Range } | ForEach-Object target) | Should -Be @("/$($s.Bucket)/$key")
        }

        It 'gives up on a download whose body stalls, after the request timeout, and resumes it' {
            $s = New-S3Scenario -Name 'bodystall'
            $null = New-TestDatabase -Path $s.Db -Rows 100
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{
                DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true; SyncInterval = '200ms'
            }
            $null = Invoke-Writer write --db $s.Db --count 100 --rows-per-tx 5 --blob-bytes 300
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $s.Log)
            $source = Get-DbDump -Path $s.Db

            Reset-S3Counters -Proxy $Proxy
            # Half the snapshot, then silence for longer than any sane timeout.
            $null = Set-S3Fault -Proxy $Proxy -Kind truncate -Seconds 300 -Count 1 -PathContains '/snapshots/'
            $target = Join-Path $s.Dir 'restored.db'
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            # In a child, so that a restore that never gives up fails the test instead of hanging it.
            try {
                $null = Invoke-ChildPwsh -TimeoutSeconds 75 -Script "Restore-SqliteReplica -ReplicaUrl '$($s.Url)' -Endpoint '$($Proxy.Endpoint)' -SkipVerify -OutputPath '$target' | Out-Null"
            }
            catch [System.TimeoutException] {
                throw "The restore still waited for the stalled body after 75 s (the request timeout is 30 s). Requests:$([Environment]::NewLine)$(Format-Requests (Get-S3ProxyRequest -Proxy $Proxy))"
            }
            $watch.Stop()
            (Get-S3Counters -Proxy $Proxy).faults.byKind.truncate | Should -Be 1
            (Get-DbDump -Path $target).digest | Should -Be $source.digest
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 60
        }
    }

    Context 'Compatibility with Litestream v0.3.13 over S3' {
        It 'litestream restores a replica that Start-SqliteReplication wrote to the bucket' {
            $s = New-S3Scenario -Name 'tolitestream'
            $null = New-TestDatabase -Path $s.Db -Rows 20
            # Frequent checkpoints restart the WAL, so the replica holds several WAL indexes.
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{
                DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true
                SyncInterval = '200ms'; MonitorInterval = '100ms'; MinCheckpointPageCount = 30
            }
            $out = Invoke-Writer write --db $s.Db --count 400 --rows-per-tx 4 --blob-bytes 500 --interval-ms 2
            @($out)[-1] | Should -Be 'done 400'
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $s.Log)
            (@(Get-ReplicaWalSegment -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify) | Measure-Object -Property Index -Maximum).Maximum | Should -BeGreaterOrEqual 1

            # Litestream's own URL form for a local S3 endpoint: bucket.localhost:<port>.
            $target = Join-Path $s.Dir 'litestream-restored.db'
            $result = Invoke-Litestream -ArgumentList @('restore', '-o', $target, "s3://$($s.Bucket).localhost:$($Moto.Port)/app.db")
            $result.ExitCode | Should -Be 0 -Because $result.Output
            $restored = Get-DbDump -Path $target
            $restored.integrity | Should -Be 'ok'
            # This check failed once in CI (2026-11-27, under load) and not in 18 runs by hand: on
            # failure the message carries what the replica held and what the replicator logged.
            $source = Get-DbDump -Path $s.Db
            if ($restored.digest -ne $source.digest) {
                $generations = @(Get-ReplicaGeneration -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify | ForEach-Object { "$($_.Generation) $($_.CreatedAt.ToString('o'))..$($_.UpdatedAt.ToString('o')) snapshots $($_.SnapshotCount) segments $($_.SegmentCount)" })
                $logLines = @(Get-Content -LiteralPath $s.Log | Where-Object { $_ -match 'generation|restart|checkpoint|warn' })
                $why = "restored maxId $($restored.maxId) of $($source.maxId); litestream: $(($result.Output -split '\r?\n' | Where-Object { $_ }) -join ' | '); generations: $($generations -join ' ; '); log: $($logLines -join ' | ')"
                $restored.digest | Should -Be $source.digest -Because $why
            }
        }

        It 'Restore-SqliteReplica restores what litestream replicate wrote to the bucket: latest, -Timestamp and -Index' {
            $s = New-S3Scenario -Name 'fromlitestream'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            $url = "s3://$($s.Bucket)/ls/app.db"
            $litestream = Start-LitestreamReplicate -DbPath $s.Db -S3Bucket $s.Bucket -S3Path 'ls/app.db' -S3Endpoint $Moto.Endpoint `
                -WorkDirectory (Join-Path $s.Dir 'litestream') -SyncInterval '200ms' -MinCheckpointPageCount 20
            $Children.Add($litestream)

            # Phase 1, then a quiet spell around the chosen time (moto's times have one-second resolution), then phase 2.
            $null = Invoke-Writer write --db $s.Db --count 150 --rows-per-tx 3 --blob-bytes 200
            $phase1 = Get-DbDump -Path $s.Db
            $null = Wait-Until -TimeoutSeconds 30 -IntervalMilliseconds 500 -Message 'litestream to upload phase 1' -Condition {
                (Restore-S3Replica -Url $url).Dump.digest -eq $phase1.digest
            }
            Start-Sleep -Milliseconds 2200
            $timestamp = [DateTimeOffset]::UtcNow
            Start-Sleep -Milliseconds 2200
            # In three batches with pauses longer than litestream's sync interval, so that several
            # of its syncs find more than 20 pages and checkpoint (one quick burst can be taken in
            # by a single sync: one checkpoint, and too few WAL indexes for the checks below).
            foreach ($batch in 1..3) {
                $null = Invoke-Writer write --db $s.Db --count 100 --rows-per-tx 3 --blob-bytes 200
                Start-Sleep -Milliseconds 700
            }
            $final = Get-DbDump -Path $s.Db
            $null = Wait-Until -TimeoutSeconds 30 -IntervalMilliseconds 500 -Message 'litestream to upload phase 2' -Condition {
                (Restore-S3Replica -Url $url).Dump.digest -eq $final.digest
            }
            $litestream | Stop-LitestreamReplicate -TimeoutSeconds 30 | Should -Be 0

            $latest = Restore-S3Replica -Url $url
            $latest.Dump.integrity | Should -Be 'ok'
            $latest.Dump.digest | Should -Be $final.digest

            $atTime = Restore-S3Replica -Url $url -Extra @{ Timestamp = $timestamp }
            $atTime.Dump.digest | Should -Be $phase1.digest -Because "the state at $($timestamp.ToString('o')) is phase 1"
            $lsAtTime = Join-Path $s.Dir 'ls-at-time.db'
            $result = Invoke-Litestream -ArgumentList @('restore', '-o', $lsAtTime, '-timestamp', (Format-RfcTimestamp $timestamp), "s3://$($s.Bucket).localhost:$($Moto.Port)/ls/app.db")
            $result.ExitCode | Should -Be 0 -Because $result.Output
            (Get-DbDump -Path $lsAtTime).digest | Should -Be $atTime.Dump.digest

            $indexes = @(Get-ReplicaWalSegment -ReplicaUrl $url -Endpoint $Proxy.Endpoint -SkipVerify | Select-Object -ExpandProperty Index -Unique | Sort-Object)
            $indexes.Count | Should -BeGreaterOrEqual 3 -Because 'litestream checkpointed at 20 pages'
            # Every index (up to eight): the same state as litestream's own restore at that index.
            $maxIds = foreach ($index in @($indexes | Select-Object -First 8)) {
                $atIndex = Restore-S3Replica -Url $url -Extra @{ Index = $index }
                $atIndex.Result.Index | Should -Be $index
                $lsAtIndex = Join-Path $s.Dir ('ls-at-index-{0:x8}.db' -f $index)
                $result = Invoke-Litestream -ArgumentList @('restore', '-o', $lsAtIndex, '-index', ('{0:x8}' -f $index), "s3://$($s.Bucket).localhost:$($Moto.Port)/ls/app.db")
                $result.ExitCode | Should -Be 0 -Because $result.Output
                (Get-DbDump -Path $lsAtIndex).digest | Should -Be $atIndex.Dump.digest -Because "both restore index $('{0:x8}' -f $index)"
                $atIndex.Dump.maxId
            }
            @($maxIds | Select-Object -Unique).Count | Should -BeGreaterThan 1 -Because "-Index selects earlier states (maxId per index: $($maxIds -join ', '))"
            $maxIds[0] | Should -BeLessThan $final.maxId
        }
    }

    Context 'Secrets' {
        It 'never shows the credentials in any stream, error, exception, status file or summary, even on failures' {
            $s = New-S3Scenario -Name 'secrets'
            $null = New-TestDatabase -Path $s.Db -Rows 5
            $keyId = 'AKSRKEY' + [guid]::NewGuid().ToString('N').Substring(0, 12).ToUpperInvariant()
            $secret = 'SrSecret/' + [guid]::NewGuid().ToString('N') + '+' + [guid]::NewGuid().ToString('N').Substring(0, 8)
            $config = Join-Path $s.Dir 'litestream.yml'
            [System.IO.File]::WriteAllText($config, @"
access-key-id: $keyId
secret-access-key: $secret
dbs:
  - path: $($s.Db)
    replicas:
      - type: s3
        bucket: $($s.Bucket)
        path: app.db
        endpoint: $($Proxy.Endpoint)
        skip-verify: true
        sync-interval: 200ms
"@)
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{ ConfigPath = $config }
            $null = Invoke-Writer write --db $s.Db --count 20 --interval-ms 5
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -TimeoutSeconds 30 -Process $replicator
            $statusJson = Get-ChildItem -LiteralPath $s.Dir -Recurse -Force -Filter 'sqlitereplica-status.json' | Get-Content -Raw
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $s.Log)

            # Every cmdlet, with the secret given every way, in success and in failure (403, wrong bucket).
            $lines = Invoke-ChildPwsh -Environment @{ LITESTREAM_ACCESS_KEY_ID = $keyId; LITESTREAM_SECRET_ACCESS_KEY = $secret } -Script @"
`$ErrorActionPreference = 'Continue'
`$VerbosePreference = 'Continue'
`$DebugPreference = 'Continue'
`$cred = [pscredential]::new('$keyId', (ConvertTo-SecureString '$secret' -AsPlainText -Force))
`$out = & {
    Get-ReplicaSnapshot -ConfigPath '$config' -DatabasePath '$($s.Db)'
    Get-ReplicaGeneration -ReplicaUrl '$($s.Url)' -Endpoint '$($Proxy.Endpoint)' -SkipVerify -Credential `$cred
    Restore-SqliteReplica -ReplicaUrl '$($s.Url)' -Endpoint '$($Proxy.Endpoint)' -SkipVerify -Credential `$cred -OutputPath '$(Join-Path $s.Dir 'r1.db')'
    Restore-SqliteReplica -ReplicaUrl 's3://sr-missing-bucket-x/app.db' -Endpoint '$($Proxy.Endpoint)' -SkipVerify -Credential `$cred -OutputPath '$(Join-Path $s.Dir 'r2.db')'
    Test-ReplicaRestore -ConfigPath '$config' -DatabasePath '$($s.Db)' -MaxLag 5s
    Get-SqliteReplicationStatus -ConfigPath '$config'
} *>&1
`$out | ForEach-Object { if (`$_ -is [System.Management.Automation.ErrorRecord]) { 'ERROR ' + `$_.ToString() + ' ' + `$_.Exception.ToString() } else { `$_ | Format-List * -Force | Out-String -Width 400 } }
`$out | Where-Object { `$_ -isnot [System.Management.Automation.ErrorRecord] -and `$_ -isnot [string] } | ForEach-Object { try { `$_ | ConvertTo-Json -Depth 4 -WarningAction SilentlyContinue } catch { } }
"@
            $null = Set-S3Fault -Proxy $Proxy -Kind status -Status 403 -Code AccessDenied -Message 'Access Denied' -Count -1
            try {
                $denied = Invoke-ChildPwsh -Environment @{ LITESTREAM_ACCESS_KEY_ID = $keyId; LITESTREAM_SECRET_ACCESS_KEY = $secret } -Script @"
`$ErrorActionPreference = 'Continue'
Restore-SqliteReplica -ReplicaUrl '$($s.Url)' -Endpoint '$($Proxy.Endpoint)' -SkipVerify -OutputPath '$(Join-Path $s.Dir 'r3.db')' *>&1 | ForEach-Object { 'ERROR ' + `$_.ToString() + ' ' + `$_.Exception.ToString() }
"@
            }
            finally {
                Clear-S3Fault -Proxy $Proxy
            }

            $everything = @((Get-Content -Raw -LiteralPath $s.Log), $statusJson, ($lines -join "`n"), ($denied -join "`n")) -join "`n"
            ($lines -join "`n") | Should -Match 'ERROR .*BucketNotFound|NoSuchBucket' -Because 'the failure case really ran'
            ($denied -join "`n") | Should -Match 'ERROR ' -Because 'the 403 case really ran'
            $everything.Contains($secret) | Should -BeFalse -Because 'the secret access key must never be formatted into text'
            $everything.Contains([uri]::EscapeDataString($secret)) | Should -BeFalse
        }
    }

    Context 'Errors' {
        It 'reports revoked credentials (HTTP 403 AccessDenied) as StoreAccessDenied, from restore and from replication' {
            $s = New-S3Scenario -Name 'denied'
            $null = New-TestDatabase -Path $s.Db -Rows 5
            $null = Set-S3Fault -Proxy $Proxy -Kind status -Status 403 -Code AccessDenied -Message 'Access Denied' -Count -1
            $failure = Get-ErrorRecord { Restore-SqliteReplica -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify -OutputPath (New-RestoreTarget -Parent $TestDrive) }
            $failure | Should -Not -BeNullOrEmpty
            $failure.FullyQualifiedErrorId | Should -BeLike 'StoreAccessDenied*' -Because $failure.Exception.Message

            $replicator = Start-S3Replicator -LogPath $s.Log -NoWait -Parameters @{ DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true }
            $replicator | Wait-TestProcess -TimeoutSeconds 60 | Should -Be 1 -Because (Get-LogTail -Path $s.Log)
            @(Get-ReplicatorErrorId -LogPath $s.Log)[0] | Should -BeLike 'StoreAccessDenied*' -Because (Get-LogTail -Path $s.Log)
        }

        It 'reports a missing bucket as BucketNotFound, from restore and from replication' {
            $s = New-S3Scenario -Name 'nobucket'
            $null = New-TestDatabase -Path $s.Db -Rows 5
            $url = 's3://sr-no-such-bucket-{0}/app.db' -f [guid]::NewGuid().ToString('N').Substring(0, 8)
            $failure = Get-ErrorRecord { Restore-SqliteReplica -ReplicaUrl $url -Endpoint $Proxy.Endpoint -SkipVerify -OutputPath (New-RestoreTarget -Parent $TestDrive) }
            $failure | Should -Not -BeNullOrEmpty
            $failure.FullyQualifiedErrorId | Should -BeLike 'BucketNotFound*' -Because $failure.Exception.Message

            $replicator = Start-S3Replicator -LogPath $s.Log -NoWait -Parameters @{ DatabasePath = $s.Db; ReplicaUrl = $url; Endpoint = $Proxy.Endpoint; SkipVerify = $true }
            $replicator | Wait-TestProcess -TimeoutSeconds 60 | Should -Be 1 -Because (Get-LogTail -Path $s.Log)
            @(Get-ReplicatorErrorId -LogPath $s.Log)[0] | Should -BeLike 'BucketNotFound*' -Because (Get-LogTail -Path $s.Log)
        }

        It 'refuses -Credential with an empty secret with InvalidArgument, from restore and from replication, without naming the key' {
            $s = New-S3Scenario -Name 'emptysecret'
            $null = New-TestDatabase -Path $s.Db -Rows 5
            $credential = [pscredential]::new('AKIASQLITEREPLICAEMPTY', [securestring]::new())
            $failure = Get-ErrorRecord { Restore-SqliteReplica -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify -Credential $credential -OutputPath (New-RestoreTarget -Parent $TestDrive) }
            $failure | Should -Not -BeNullOrEmpty
            $failure.FullyQualifiedErrorId | Should -Be 'InvalidArgument,SqliteReplica.Commands.RestoreSqliteReplicaCommand' -Because $failure.Exception.Message
            $failure.Exception.Message | Should -Match 'empty secret access key'
            $failure.Exception.Message | Should -Match '-Credential'
            $failure.Exception.Message | Should -Not -Match 'AKIASQLITEREPLICAEMPTY'

            $failure = Get-ErrorRecord { Start-SqliteReplication -DatabasePath $s.Db -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify -Credential $credential }
            $failure | Should -Not -BeNullOrEmpty
            $failure.FullyQualifiedErrorId | Should -Be 'InvalidArgument,SqliteReplica.Commands.StartSqliteReplicationCommand' -Because $failure.Exception.Message
            Test-Path -LiteralPath (Join-Path $s.Dir '.app.db-litestream') | Should -BeFalse -Because 'nothing may start replicating'
        }

        It 'reports an endpoint that is not an S3 server (404 without an S3 error code) as StoreRejected, from restore, listing and replication' {
            $s = New-S3Scenario -Name 'nots3'
            $null = New-TestDatabase -Path $s.Db -Rows 5
            # The proxy's control port is a plain HTTP server that answers 404 to S3 requests.
            $failure = Get-ErrorRecord { Restore-SqliteReplica -ReplicaUrl $s.Url -Endpoint $Proxy.ControlUrl -OutputPath (New-RestoreTarget -Parent $TestDrive) }
            $failure | Should -Not -BeNullOrEmpty
            $failure.FullyQualifiedErrorId | Should -Be 'StoreRejected,SqliteReplica.Commands.RestoreSqliteReplicaCommand' -Because $failure.Exception.Message
            $failure.Exception.Message | Should -Match 'does not look like an S3-compatible store'
            $failure.Exception.Message | Should -Match 'Endpoint'

            $failure = Get-ErrorRecord { Get-ReplicaGeneration -ReplicaUrl $s.Url -Endpoint $Proxy.ControlUrl }
            $failure.FullyQualifiedErrorId | Should -BeLike 'StoreRejected,*' -Because $failure.Exception.Message

            $replicator = Start-S3Replicator -LogPath $s.Log -NoWait -Parameters @{ DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.ControlUrl }
            $replicator | Wait-TestProcess -TimeoutSeconds 60 | Should -Be 1 -Because (Get-LogTail -Path $s.Log)
            @(Get-ReplicatorErrorId -LogPath $s.Log)[0] | Should -Be 'StoreRejected,SqliteReplica.Commands.StartSqliteReplicationCommand' -Because (Get-LogTail -Path $s.Log)
            (Get-DbDump -Path $s.Db).maxId | Should -Be 5
        }

        It 'reports a web server that answers with HTML pages (not S3 XML) as StoreRejected' {
            $s = New-S3Scenario -Name 'html'
            # python3's http.server: the bucket is a folder, so a listing is a 200 HTML page.
            $www = Join-Path $s.Dir 'www'
            $null = New-Item -ItemType Directory -Path (Join-Path $www $s.Bucket) -Force
            $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
            $listener.Start(); $port = $listener.LocalEndpoint.Port; $listener.Stop()
            $server = Start-TestProcess -FilePath python3 -ArgumentList @('-u', '-m', 'http.server', '--bind', '127.0.0.1', '--directory', $www, $port) -LogPath (Join-Path $s.Dir 'www.log') -Name 'webserver'
            $Children.Add($server)
            $null = Wait-Until -TimeoutSeconds 30 -Message 'the web server answering' -Condition {
                try { (Invoke-WebRequest -Uri "http://127.0.0.1:$port/" -TimeoutSec 2 -NoProxy).StatusCode -eq 200 } catch { $false }
            }
            $failure = Get-ErrorRecord { Get-ReplicaGeneration -ReplicaUrl $s.Url -Endpoint "http://127.0.0.1:$port" }
            $failure | Should -Not -BeNullOrEmpty
            $failure.FullyQualifiedErrorId | Should -Be 'StoreRejected,SqliteReplica.Commands.GetReplicaGenerationCommand' -Because $failure.Exception.Message
            $failure.Exception.Message | Should -Match 'not an S3 response'
            $failure = Get-ErrorRecord { Restore-SqliteReplica -ReplicaUrl $s.Url -Endpoint "http://127.0.0.1:$port" -OutputPath (New-RestoreTarget -Parent $TestDrive) }
            $failure.FullyQualifiedErrorId | Should -Be 'StoreRejected,SqliteReplica.Commands.RestoreSqliteReplicaCommand' -Because $failure.Exception.Message
        }

        It 'reports an S3 status it does not expect (HTTP 418) as StoreRejected at once, without retrying' {
            $s = New-S3Scenario -Name 'teapot'
            $null = New-TestDatabase -Path $s.Db -Rows 5
            $null = Set-S3Fault -Proxy $Proxy -Kind status -Status 418 -Code 'ImATeapot' -Message 'short and stout' -Count -1
            Reset-S3Counters -Proxy $Proxy
            $failure = Get-ErrorRecord { Restore-SqliteReplica -ReplicaUrl $s.Url -Endpoint $Proxy.Endpoint -SkipVerify -OutputPath (New-RestoreTarget -Parent $TestDrive) }
            $failure | Should -Not -BeNullOrEmpty
            $failure.FullyQualifiedErrorId | Should -Be 'StoreRejected,SqliteReplica.Commands.RestoreSqliteReplicaCommand' -Because $failure.Exception.Message
            $failure.Exception.Message | Should -Match '418'
            (Get-S3Counters -Proxy $Proxy).total | Should -Be 1 -Because 'an answer that retrying cannot change is not retried'
        }

        It 'reports an endpoint that refuses connections as StoreUnreachable, after retrying' {
            $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
            $listener.Start()
            $closedPort = $listener.LocalEndpoint.Port
            $listener.Stop()
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            $failure = Get-ErrorRecord { Restore-SqliteReplica -ReplicaUrl 's3://sr-unreachable/app.db' -Endpoint "https://127.0.0.1:$closedPort" -SkipVerify -OutputPath (New-RestoreTarget -Parent $TestDrive) }
            $watch.Stop()
            $failure | Should -Not -BeNullOrEmpty
            $failure.FullyQualifiedErrorId | Should -BeLike 'StoreUnreachable*' -Because $failure.Exception.Message
            $failure.Exception.Message | Should -Match 'after \d+ attempts'
            $watch.Elapsed.TotalSeconds | Should -BeGreaterThan 1 -Because 'the request is retried with backoff before giving up'
        }

        It 'refuses a bad configuration with <Id> (<Case>)' -TestCases @(
            @{ Case = 'unset variable'; Id = 'ConfigUnsetVariable'; Line = '        region: ${SQLITEREPLICA_TEST_UNSET_VARIABLE}' }
            @{ Case = 'unknown key'; Id = 'ConfigUnknownKey'; Line = '        bukcet: typo' }
            @{ Case = 'days are not a Go duration'; Id = 'ConfigInvalid'; Line = '        retention: 7d' }
            @{ Case = 'age encryption'; Id = 'ConfigNotSupported'; Line = "        age:`n          recipients: [age1example]" }
        ) {
            param($Case, $Id, $Line)
            $dir = Join-Path $TestDrive ("config-" + $Id)
            $null = New-Item -ItemType Directory -Path $dir -Force
            $db = Join-Path $dir 'app.db'
            $config = Join-Path $dir 'litestream.yml'
            $text = @(
                'dbs:'
                "  - path: `"$db`""
                '    replicas:'
                '      - type: s3'
                '        bucket: sr-config-test'
                '        path: app.db'
                "        endpoint: $($Proxy.Endpoint)"
                '        skip-verify: true'
                $Line
            ) -join "`n"
            [System.IO.File]::WriteAllText($config, $text + "`n")
            $failure = Get-ErrorRecord { Restore-SqliteReplica -ConfigPath $config -DatabasePath $db -OutputPath (Join-Path $dir 'restored.db') }
            $failure | Should -Not -BeNullOrEmpty
            $failure.FullyQualifiedErrorId | Should -BeLike "$Id*" -Because $failure.Exception.Message
        }

        It 'Start-SqliteReplication refuses each bad configuration before replicating, with its error id' {
            $dir = Join-Path $TestDrive 'config-start'
            $null = New-Item -ItemType Directory -Path $dir -Force
            $db = (New-TestDatabase -Path (Join-Path $dir 'app.db') -Rows 1).Path
            $cases = [ordered]@{
                ConfigUnsetVariable = '        region: ${SQLITEREPLICA_TEST_UNSET_VARIABLE}'
                ConfigUnknownKey    = '        bukcet: typo'
                ConfigInvalid       = '        retention: 7d'
                ConfigNotSupported  = "        age:`n          recipients: [age1example]"
            }
            foreach ($id in $cases.Keys) {
                $text = @('dbs:', "  - path: `"$db`"", '    replicas:', '      - type: s3', '        bucket: sr-config-test', '        path: app.db', "        endpoint: $($Proxy.Endpoint)", '        skip-verify: true', $cases[$id]) -join "`n"
                [System.IO.File]::WriteAllText((Join-Path $dir "$id.yml"), $text + "`n")
            }
            # One child for all four; a configuration that is not refused would keep it running
            # (replicating), so the timeout fails the test instead of hanging it.
            $lines = Invoke-ChildPwsh -TimeoutSeconds 60 -Script @"
`$ErrorActionPreference = 'Continue'
foreach (`$id in '$($cases.Keys -join "','")') {
    try {
        Start-SqliteReplication -ConfigPath (Join-Path '$dir' "`$id.yml") -ErrorAction Stop
        "RESULT `$id none"
    }
    catch {
        "RESULT `$id `$(`$_.FullyQualifiedErrorId)"
    }
}
"@
            foreach ($id in $cases.Keys) {
                $line = @($lines) | Where-Object { $_ -like "RESULT $id *" }
                $line | Should -Not -BeNullOrEmpty -Because ($lines -join [Environment]::NewLine)
                $line.Substring("RESULT $id ".Length) | Should -BeLike "$id*"
            }
            Test-Path -LiteralPath (Join-Path $dir '.app.db-litestream') | Should -BeFalse -Because 'nothing may start replicating'
        }
    }

    Context 'Request counts' {
        It 'sends no request at all while the database is idle' {
            $s = New-S3Scenario -Name 'idle'
            $null = New-TestDatabase -Path $s.Db -Rows 20
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{
                DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true
                SyncInterval = '200ms'; MonitorInterval = '100ms'
            }
            $null = Invoke-Writer write --db $s.Db --count 50 --rows-per-tx 5 --interval-ms 5
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -TimeoutSeconds 30 -Process $replicator
            Wait-ProxyQuiet -QuietSeconds 1.5

            Reset-S3Counters -Proxy $Proxy
            Start-Sleep -Seconds 5
            $counters = Get-S3Counters -Proxy $Proxy
            $counters.total | Should -Be 0 -Because "an idle database costs nothing; requests seen:$([Environment]::NewLine)$(Format-Requests (Get-S3ProxyRequest -Proxy $Proxy))"
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0
        }

        It 'sends at most one WAL segment PUT per sync interval under a steady trickle of writes' {
            $s = New-S3Scenario -Name 'trickle'
            $null = New-TestDatabase -Path $s.Db -Rows 20
            $replicator = Start-S3Replicator -LogPath $s.Log -Parameters @{
                DatabasePath = $s.Db; ReplicaUrl = $s.Url; Endpoint = $Proxy.Endpoint; SkipVerify = $true
                SyncInterval = '1s'; MonitorInterval = '100ms'
            }
            $null = Invoke-Writer write --db $s.Db --count 5
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -TimeoutSeconds 30 -Process $replicator
            Wait-ProxyQuiet -QuietSeconds 1.5

            Reset-S3Counters -Proxy $Proxy
            # R2-like latency on every segment PUT (300 ms), so commits keep arriving while an
            # upload is in flight; they must wait for the next sync interval.
            $null = Set-S3Fault -Proxy $Proxy -Kind stall -Seconds 0.3 -Count -1 -PathContains '/wal/'
            # One commit every 25 ms for about 6 s.
            $writer = Start-S3Writer write --db $s.Db --count 240 --interval-ms 25 -StdoutPath (Join-Path $s.Dir 'writer.out')
            $null = $writer | Wait-TestProcess -TimeoutSeconds 60
            Wait-ProxyQuiet -QuietSeconds 1.5
            $puts = @(Get-S3ProxyRequest -Proxy $Proxy -Operation PutObject | Where-Object { $_.target -like '*/wal/*' })
            $report = Format-Requests $puts
            $puts.Count | Should -BeGreaterOrEqual 2
            $spanSeconds = ($puts[-1].atMs - $puts[0].atMs) / 1000
            $puts.Count | Should -BeLessOrEqual ([Math]::Floor($spanSeconds) + 2) -Because "at most one segment PUT per 1 s sync interval (span $spanSeconds s):$([Environment]::NewLine)$report"
            for ($i = 1; $i -lt $puts.Count; $i++) {
                ($puts[$i].atMs - $puts[$i - 1].atMs) | Should -BeGreaterThan 800 -Because "segment PUTs must be a sync interval apart:$([Environment]::NewLine)$report"
            }
            $replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0
        }
    }
}

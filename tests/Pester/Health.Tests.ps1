#Requires -Version 7.6
# Replication health end to end: Get-SqliteReplicationStatus, the heartbeat URL, the metrics on
# 'addr' and the restore drill (Test-ReplicaRestore) must all turn red when the pipeline breaks
# while the application writes, and green again after the repair, without a restart.
#
# Real components only: moto_server behind the S3 test proxy (faults: 403, endpoint down), the
# replicator as a separate pwsh process in its own process group (frozen with SIGSTOP, stopped
# with SIGTERM), the application as the separate writer process, a small tmpfs for a full meta
# directory, and a plain HTTP server (python3 -m http.server) whose access log counts the
# heartbeat calls. Run through `build.ps1 Test`, which sets SQLITEREPLICA_MODULE,
# SQLITEREPLICA_WRITER, SQLITEREPLICA_S3PROXY and SQLITEREPLICA_LITESTREAM.

Describe 'Replication health: status, heartbeat URL, metrics and the restore drill' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'IntegrationHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'S3Fixture.psm1') -Force
        Import-Module -Name $env:SQLITEREPLICA_MODULE -Force -ErrorAction Stop

        $script:DrillFailedId = 'DrillFailed,SqliteReplica.Commands.TestReplicaRestoreCommand'
        $script:IsRoot = (& id -u) -eq '0'

        # Any credentials do for moto; the replicators (children) inherit these variables.
        $script:SavedCredentials = @{
            LITESTREAM_ACCESS_KEY_ID     = $env:LITESTREAM_ACCESS_KEY_ID
            LITESTREAM_SECRET_ACCESS_KEY = $env:LITESTREAM_SECRET_ACCESS_KEY
        }
        $env:LITESTREAM_ACCESS_KEY_ID = 'AKIASQLITEREPLICAHEALTH'
        $env:LITESTREAM_SECRET_ACCESS_KEY = 'sqlitereplica-health-secret'

        $script:Moto = Start-MotoServer -LogPath (Join-Path $TestDrive 'moto/moto.log')
        $script:Proxy = Start-S3Proxy -Upstream $Moto.Endpoint -LogPath (Join-Path $TestDrive 's3proxy/s3proxy.log')
        # Processes of the running test (replicators, writers), killed after each test.
        $script:Children = [System.Collections.Generic.List[object]]::new()

        function Get-FreePort {
            $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
            $listener.Start()
            try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
        }

        function Invoke-Http {
            # One plain HTTP request; returns Status and Body. Throws when there is no answer
            # within -TimeoutSeconds (TaskCanceledException) or no connection.
            param([Parameter(Mandatory)][string]$Uri, [string]$Method = 'GET', [double]$TimeoutSeconds = 5, [hashtable]$Headers = @{})
            $handler = [System.Net.Http.SocketsHttpHandler]::new()
            $handler.UseProxy = $false
            $client = [System.Net.Http.HttpClient]::new($handler)
            $client.Timeout = [TimeSpan]::FromSeconds($TimeoutSeconds)
            try {
                $request = [System.Net.Http.HttpRequestMessage]::new([System.Net.Http.HttpMethod]::new($Method), $Uri)
                foreach ($key in $Headers.Keys) { $null = $request.Headers.TryAddWithoutValidation($key, [string]$Headers[$key]) }
                $response = $client.SendAsync($request).GetAwaiter().GetResult()
                [pscustomobject]@{ Status = [int]$response.StatusCode; Body = $response.Content.ReadAsStringAsync().GetAwaiter().GetResult() }
            }
            finally {
                $client.Dispose()
            }
        }

        # The heartbeat receiver: a static HTTP server answering 200 for /hb/<name> and logging
        # one access line per request (on stderr, which goes to its log).
        $script:HeartbeatRoot = Join-Path $TestDrive 'heartbeat'
        $null = New-Item -ItemType Directory -Path (Join-Path $HeartbeatRoot 'www/hb') -Force
        $script:HeartbeatPort = Get-FreePort
        $script:HeartbeatServer = Start-TestProcess -FilePath python3 -ArgumentList @('-u', '-m', 'http.server', '--bind', '127.0.0.1', '--directory', (Join-Path $HeartbeatRoot 'www'), $HeartbeatPort) -LogPath (Join-Path $HeartbeatRoot 'access.log') -Name 'heartbeat'
        $null = Wait-Until -TimeoutSeconds 30 -Message 'the heartbeat receiver answering' -Condition {
            if ($HeartbeatServer.HasExited) { throw "the heartbeat receiver exited: $(Get-LogTail -Path $HeartbeatServer.LogPath)" }
            (Invoke-Http -Uri "http://127.0.0.1:$HeartbeatPort/" -TimeoutSeconds 2).Status -eq 200
        }

        function Get-HeartbeatCount {
            param([Parameter(Mandatory)]$Scenario)
            $text = [System.IO.File]::ReadAllText($HeartbeatServer.LogPath)
            [regex]::Matches($text, '"GET ' + [regex]::Escape($Scenario.HeartbeatPath) + ' HTTP').Count
        }

        function New-HealthScenario {
            # A database with a few rows, a fresh bucket (made on moto directly), and a
            # litestream.yml with metrics on a free port, a heartbeat URL and one S3 replica
            # through the proxy. -MetaOnTmpfs puts the meta directory on a small tmpfs.
            param([Parameter(Mandatory)][string]$Name, [switch]$MetaOnTmpfs)
            $dir = Join-Path $TestDrive $Name
            $null = New-Item -ItemType Directory -Path $dir -Force
            $bucket = ('health-{0}-{1}' -f $Name, [guid]::NewGuid().ToString('N').Substring(0, 8)).ToLowerInvariant()
            $null = New-S3Bucket -Endpoint $Moto.Endpoint -Name $bucket
            $db = (New-TestDatabase -Path (Join-Path $dir 'app.db') -Rows 10).Path
            $mount = $null
            $meta = $null
            if ($MetaOnTmpfs) {
                $mount = New-TmpfsMount -Size 16m -Path (Join-Path $dir 'metafs')
                $meta = Join-Path $mount 'meta'
            }
            $metricsPort = Get-FreePort
            $heartbeatPath = "/hb/$Name"
            Set-Content -LiteralPath (Join-Path $HeartbeatRoot "www$heartbeatPath") -Value 'ok'
            $yaml = [System.Text.StringBuilder]::new()
            $null = $yaml.AppendLine("addr: 127.0.0.1:$metricsPort").AppendLine('dbs:')
            $null = $yaml.AppendLine("  - path: `"$db`"")
            if ($meta) { $null = $yaml.AppendLine("    meta-path: `"$meta`"") }
            $null = $yaml.AppendLine('    monitor-interval: 100ms').
                AppendLine("    heartbeat-url: http://127.0.0.1:$HeartbeatPort$heartbeatPath").
                AppendLine('    heartbeat-interval: 1s').
                AppendLine('    replicas:').
                AppendLine('      - type: s3').
                AppendLine("        bucket: $bucket").
                AppendLine('        path: app.db').
                AppendLine("        endpoint: $($Proxy.Endpoint)").
                AppendLine('        region: auto').
                AppendLine('        force-path-style: true').
                AppendLine('        skip-verify: true').
                AppendLine('        sync-interval: 1s')
            $config = Join-Path $dir 'litestream.yml'
            [System.IO.File]::WriteAllText($config, $yaml.ToString())
            [pscustomobject]@{
                Name          = $Name
                Dir           = $dir
                Db            = $db
                Config        = $config
                Bucket        = $bucket
                Mount         = $mount
                MetricsUrl    = "http://127.0.0.1:$metricsPort/metrics"
                HeartbeatPath = $heartbeatPath
                Log           = Join-Path $dir 'replicator.log'
            }
        }

        function Start-ConfigReplicator {
            # Start-SqliteReplication -ConfigPath in a separate pwsh (own process group), verbose
            # lines in its log; waits until it replicates.
            param([Parameter(Mandatory)]$Scenario)
            $process = Start-ReplicatorProcess -Parameters @{ ConfigPath = $Scenario.Config } -LogPath $Scenario.Log
            $Children.Add($process)
            $null = Wait-LogLine -Path $Scenario.Log -Pattern 'replicating ' -TimeoutSeconds 60 -Process $process
            $process
        }

        function Start-AppWriter {
            param([Parameter(Mandatory)]$Scenario, [int]$IntervalMs = 300)
            $writer = Start-Writer write --db $Scenario.Db --count 0 --interval-ms $IntervalMs -StdoutPath (Join-Path $Scenario.Dir 'writer.out')
            $Children.Add($writer)
            $writer
        }

        function Get-Health {
            param([Parameter(Mandatory)]$Scenario)
            @(Get-SqliteReplicationStatus -ConfigPath $Scenario.Config -DatabasePath $Scenario.Db -ErrorAction Stop)
        }

        function Get-Metric {
            # The value of one metric of the scenario's replicator ($null when absent); throws
            # when the scrape gets no answer.
            param([Parameter(Mandatory)]$Scenario, [Parameter(Mandatory)][string]$Name, [double]$TimeoutSeconds = 5)
            $body = (Invoke-Http -Uri $Scenario.MetricsUrl -TimeoutSeconds $TimeoutSeconds).Body
            $m = [regex]::Match($body, '(?m)^' + [regex]::Escape($Name) + '\{[^}]*\} (\S+)$')
            if ($m.Success) { [double]::Parse($m.Groups[1].Value, [cultureinfo]::InvariantCulture) } else { $null }
        }

        function Invoke-Drill {
            # Test-ReplicaRestore in this process; returns the results and the error records.
            param([Parameter(Mandatory)][hashtable]$Parameters)
            $drillErrors = $null
            $results = @(Test-ReplicaRestore @Parameters -ErrorAction SilentlyContinue -ErrorVariable drillErrors)
            [pscustomobject]@{ Results = $results; Errors = @($drillErrors) }
        }

        function Format-Drill {
            param($Drill)
            ($Drill.Results | ForEach-Object { "$_ | " + (($_.Checks | ForEach-Object { "$_" }) -join ' | ') }) + ($Drill.Errors | ForEach-Object { "error $($_.FullyQualifiedErrorId): $($_.Exception.Message)" }) -join [Environment]::NewLine
        }

        function Remove-MotoBucket {
            # Deletes every object, then the bucket, on moto directly (the replicator keeps
            # uploading meanwhile, so repeat until the bucket itself is gone). moto checks no
            # signature but refuses anonymous object deletes: send an Authorization header.
            param([Parameter(Mandatory)][string]$Bucket)
            $auth = @{ Authorization = "AWS4-HMAC-SHA256 Credential=$env:LITESTREAM_ACCESS_KEY_ID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00" }
            $null = Wait-Until -TimeoutSeconds 30 -IntervalMilliseconds 50 -Message "bucket $Bucket deleted" -Condition {
                $list = Invoke-Http -Uri "$($Moto.Endpoint)/$Bucket`?list-type=2&max-keys=1000" -Headers $auth
                if ($list.Status -eq 404) { return $true }
                foreach ($key in @(([xml]$list.Body).ListBucketResult.Contents | Where-Object { $_ } | ForEach-Object Key)) {
                    $path = ($key -split '/' | ForEach-Object { [uri]::EscapeDataString($_) }) -join '/'
                    $deleted = Invoke-Http -Method DELETE -Uri "$($Moto.Endpoint)/$Bucket/$path" -Headers $auth
                    if ($deleted.Status -ne 204) { throw "DELETE $key answered $($deleted.Status): $($deleted.Body)" }
                }
                (Invoke-Http -Method DELETE -Uri "$($Moto.Endpoint)/$Bucket" -Headers $auth).Status -eq 204
            }
        }

        function Invoke-Break {
            param([Parameter(Mandatory)][string]$Kind, [Parameter(Mandatory)]$Scenario, [Parameter(Mandatory)]$Replicator)
            switch ($Kind) {
                'BucketDeleted' { Remove-MotoBucket -Bucket $Scenario.Bucket }
                'AccessDenied' { $null = Set-S3Fault -Proxy $Proxy -Kind status -Status 403 -Code AccessDenied -Count -1 }
                'EndpointDown' { $null = Set-S3Fault -Proxy $Proxy -Kind down }
                # Full, not read-only: remounting read-only fails (EBUSY) while the replicator holds
                # its lock file in the meta directory open for writing, which it does all its life.
                'MetaDiskFull' { $script:Filler = New-FillerFile -Directory $Scenario.Mount }
                'Frozen' { $Replicator | Send-ProcessGroupSignal -Signal STOP }
            }
        }

        function Invoke-Repair {
            param([Parameter(Mandatory)][string]$Kind, [Parameter(Mandatory)]$Scenario, [Parameter(Mandatory)]$Replicator)
            switch ($Kind) {
                'BucketDeleted' { $null = New-S3Bucket -Endpoint $Moto.Endpoint -Name $Scenario.Bucket }
                'AccessDenied' { Clear-S3Fault -Proxy $Proxy }
                'EndpointDown' { Clear-S3Fault -Proxy $Proxy }
                'MetaDiskFull' { Remove-Item -LiteralPath $script:Filler.FullName }
                'Frozen' { $Replicator | Send-ProcessGroupSignal -Signal CONT }
            }
        }
    }

    AfterEach {
        foreach ($child in @($Children)) {
            if (-not $child.HasExited) { $null = $child | Stop-TestProcess -Signal KILL -TimeoutSeconds 5 }
        }
        $Children.Clear()
        Clear-S3Fault -Proxy $Proxy
        Remove-TmpfsMount -All
    }

    AfterAll {
        Stop-TestProcess -All -Signal KILL -TimeoutSeconds 5
        Remove-TmpfsMount -All
        foreach ($key in $SavedCredentials.Keys) { Set-Item -Path "env:$key" -Value $SavedCredentials[$key] }
        Remove-Module -Name SqliteReplica -Force -ErrorAction Ignore
    }

    Context 'A broken pipeline while the application writes' {
        It 'when <Title>: status, heartbeat, metrics and drill turn red, then green after the repair without a restart, and no committed write is lost' -ForEach @(
            @{ Kind = 'BucketDeleted'; Title = 'the bucket is deleted' }
            @{ Kind = 'AccessDenied'; Title = 'the credentials are revoked (403 AccessDenied)' }
            @{ Kind = 'EndpointDown'; Title = 'the endpoint is down' }
            @{ Kind = 'MetaDiskFull'; Title = 'the meta directory''s disk is full'; NeedsRoot = $true }
            @{ Kind = 'Frozen'; Title = 'the replicator is frozen (SIGSTOP)' }
        ) {
            if ($NeedsRoot -and -not $IsRoot) { Set-ItResult -Skipped -Because 'a full file system needs a tmpfs mount (root)'; return }
            $s = New-HealthScenario -Name $Kind.ToLowerInvariant() -MetaOnTmpfs:($Kind -eq 'MetaDiskFull')
            $replicator = Start-ConfigReplicator -Scenario $s
            $writer = Start-AppWriter -Scenario $s
            $null = $writer | Wait-WriterProgress -MinimumId 15 -TimeoutSeconds 60

            # Green first: healthy, beating, metric 1.
            $null = Wait-Until -TimeoutSeconds 30 -Message 'the replica healthy before the break' -Condition { (Get-Health $s)[0].Healthy }
            $beats = Get-HeartbeatCount $s
            $null = Wait-Until -TimeoutSeconds 30 -Message 'the heartbeat URL called while healthy' -Condition { (Get-HeartbeatCount $s) -gt $beats }
            Get-Metric $s 'sqlitereplica_replica_healthy' | Should -Be 1

            # Break it while the writer goes on.
            Invoke-Break -Kind $Kind -Scenario $s -Replicator $replicator
            $clock = [System.Diagnostics.Stopwatch]::StartNew()
            $red = Wait-Until -TimeoutSeconds 20 -IntervalMilliseconds 200 -Message "Get-SqliteReplicationStatus to turn unhealthy after: $Title" -Condition {
                $status = (Get-Health $s)[0]
                if (-not $status.Healthy) { $status }
            }
            $detectSeconds = $clock.Elapsed.TotalSeconds
            # Information only (a shared 2-core machine): the bound is 3 sync intervals (3 s) or the allowed lag.
            Write-Host ("      [{0}] unhealthy after {1:F1} s (3 sync intervals = 3 s): {2}" -f $Kind, $detectSeconds, $red.Reason)
            $red.Healthy | Should -BeFalse

            # The heartbeat URL is no longer called (counted over a few heartbeat intervals,
            # from a second after the status turned red).
            Start-Sleep -Seconds 1
            $beatsBroken = Get-HeartbeatCount $s
            $quiet = [System.Diagnostics.Stopwatch]::StartNew()

            # Metrics: healthy 0, or for a frozen replicator no answer at all. What the red phase
            # shows is checked at the end of the test (all of it at once), so that the repair and
            # the final restore are checked even when one of these signals is wrong.
            $problems = [System.Collections.Generic.List[string]]::new()
            if ($Kind -eq 'Frozen') {
                try {
                    $answer = Invoke-Http -Uri $s.MetricsUrl -TimeoutSeconds 3
                    $problems.Add("a frozen replicator answered the metrics scrape (HTTP $($answer.Status))")
                }
                catch {
                    $chain = for ($e = $_.Exception; $e; $e = $e.InnerException) { $e }
                    if (-not ($chain | Where-Object { $_ -is [System.TimeoutException] })) {
                        $problems.Add("the metrics scrape failed without timing out: $(($chain | ForEach-Object { $_.GetType().Name + ': ' + $_.Message }) -join ' <- ')")
                    }
                }
            }
            else {
                try {
                    $null = Wait-Until -TimeoutSeconds 20 -Message "sqlitereplica_replica_healthy 0 after: $Title" -Condition { (Get-Metric $s 'sqlitereplica_replica_healthy') -eq 0 }
                }
                catch {
                    $body = (Invoke-Http -Uri $s.MetricsUrl).Body
                    $problems.Add("sqlitereplica_replica_healthy did not turn 0 within 20 s; the replicator served:$([Environment]::NewLine)$((($body -split "`n") -match '^sqlitereplica_') -join [Environment]::NewLine)")
                }
            }

            # The restore drill, while broken.
            $brokenDrill = Invoke-Drill @{ ConfigPath = $s.Config; DatabasePath = $s.Db; MaxLag = '3s' }

            if ($quiet.Elapsed.TotalSeconds -lt 3.5) { Start-Sleep -Milliseconds ([int]((3.5 - $quiet.Elapsed.TotalSeconds) * 1000)) }
            $beatsWhileBroken = (Get-HeartbeatCount $s) - $beatsBroken
            $stillRed = (Get-Health $s)[0]
            # Noted now, asserted at the end (or with the repair's failure).
            if ($beatsWhileBroken -ne 0) { $problems.Add("the heartbeat URL was called $beatsWhileBroken time(s) while the replica was behind") }
            if ($stillRed.Healthy) { $problems.Add("Get-SqliteReplicationStatus turned healthy again while broken: $($stillRed.Reason)") }
            if ($brokenDrill.Results.Count -ne 1 -or $brokenDrill.Results[0].Status -cne 'Failed' -or $brokenDrill.Errors.FullyQualifiedErrorId -notcontains $DrillFailedId) {
                $problems.Add("Test-ReplicaRestore must return one result with Status 'Failed' and write the error $DrillFailedId; it gave:$([Environment]::NewLine)$(Format-Drill $brokenDrill)")
            }

            # Repair: everything turns green again, in the same replicator process.
            Invoke-Repair -Kind $Kind -Scenario $s -Replicator $replicator
            $clock.Restart()
            try {
                $null = Wait-Until -TimeoutSeconds 45 -IntervalMilliseconds 200 -Message "Get-SqliteReplicationStatus healthy again after repairing: $Title" -Condition { (Get-Health $s)[0].Healthy }
            }
            catch {
                $status = (Get-Health $s)[0]
                $problems.Insert(0, "still unhealthy 45 s after the repair, in the same replicator process: $($status.Reason) (last error: $($status.LastError); $($status.ConsecutiveFailures) failures in a row; confirmed $($status.ConfirmedPosition), local $($status.LocalPosition))")
                $problems | Should -BeNullOrEmpty -Because "every signal must turn red while $Title, and green again after the repair"
            }
            Write-Host ("      [{0}] healthy again {1:F1} s after the repair" -f $Kind, $clock.Elapsed.TotalSeconds)
            $null = Wait-Until -TimeoutSeconds 30 -Message 'sqlitereplica_replica_healthy 1 after the repair' -Condition { (Get-Metric $s 'sqlitereplica_replica_healthy') -eq 1 }
            $null = Wait-Until -TimeoutSeconds 30 -Message 'the heartbeat URL called again after the repair' -Condition { (Get-HeartbeatCount $s) -gt $beatsBroken }
            $drill = Invoke-Drill @{ ConfigPath = $s.Config; DatabasePath = $s.Db; MaxLag = '30s' }
            $drill.Results.Count | Should -Be 1 -Because (Format-Drill $drill)
            $drill.Results[0].Status | Should -BeExactly 'Passed' -Because (Format-Drill $drill)
            $replicator.HasExited | Should -BeFalse -Because 'the repair must not need a restart'

            # Stop the application, then the replicator (SIGTERM: final sync); the bucket holds every commit.
            $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0
            $lastId = $writer.GetLastCommittedId()
            $replicator | Stop-TestProcess -Signal TERM -TimeoutSeconds 40 -NoKill | Should -Be 0 -Because (Get-LogTail -Path $s.Log)
            $target = New-RestoreTarget -Parent $s.Dir
            $null = Restore-SqliteReplica -ConfigPath $s.Config -DatabasePath $s.Db -OutputPath $target -ErrorAction Stop
            $restored = Get-DbDump -Path $target
            $source = Get-DbDump -Path $s.Db
            $restored.integrity | Should -Be 'ok'
            $restored.maxId | Should -Be $lastId -Because 'every transaction the writer committed must be in the bucket'
            $restored.digest | Should -Be $source.digest

            # What the red phase showed (heartbeat, status, metrics, drill).
            $problems | Should -BeNullOrEmpty -Because "every signal must turn red while $Title"
        }
    }

    Context 'Get-SqliteReplicationStatus: what the status file holds, and a damaged one' {
        It 'shows the shadow WAL, its cap and when continuity was given up, as the status file has them' {
            $dir = Join-Path $TestDrive 'status-cap'
            $db = (New-TestDatabase -Path (Join-Path $dir 'app.db') -Rows 20).Path
            $log = Join-Path $dir 'replicator.log'
            $replicator = Start-TestReplicator -DatabasePath $db -ReplicaPath (Join-Path $dir 'replica') -LogPath $log
            $Children.Add($replicator)
            $null = Invoke-Writer write --db $db --count 30 --rows-per-tx 3 --interval-ms 5
            $null = Wait-Until -TimeoutSeconds 30 -Message 'a healthy status' -Condition { (Get-SqliteReplicationStatus -DatabasePath $db).Healthy }

            $status = Get-SqliteReplicationStatus -DatabasePath $db
            $file = Get-Content -Raw -LiteralPath (Join-Path $dir '.app.db-litestream/sqlitereplica-status.json') | ConvertFrom-Json
            foreach ($name in 'ShadowBytes', 'ShadowCapBytes', 'ContinuityGivenUpAt') {
                $status.PSObject.Properties.Name | Should -Contain $name
            }
            $status.ShadowCapBytes | Should -BeGreaterThan 0
            $status.ShadowCapBytes | Should -Be $file.shadowCapBytes
            $status.ShadowBytes | Should -BeGreaterThan 0
            $status.ContinuityGivenUpAt | Should -BeNullOrEmpty -Because 'the cap was never reached'
            ($status | Format-List * | Out-String) | Should -Match 'ShadowCapBytes\s*:\s*\d+'
            $replicator | Stop-TestReplicator | Should -Be 0
        }

        It 'reports a corrupt status file as corrupt (unhealthy), not as a database nobody replicates' {
            $dir = Join-Path $TestDrive 'status-corrupt'
            $db = (New-TestDatabase -Path (Join-Path $dir 'app.db') -Rows 5).Path
            $none = Get-SqliteReplicationStatus -DatabasePath $db
            $none.Healthy | Should -BeFalse
            $none.Reason | Should -Match 'no status published'

            $statusFile = Join-Path $dir '.app.db-litestream/sqlitereplica-status.json'
            $null = New-Item -ItemType Directory -Force -Path (Split-Path $statusFile)
            foreach ($garbage in @('{"version": 1, "processId": 4', ([string][char]0 * 64), 'not json', '{}')) {
                [System.IO.File]::WriteAllText($statusFile, $garbage)
                $status = Get-SqliteReplicationStatus -DatabasePath $db -ErrorAction Stop
                $status.Healthy | Should -BeFalse
                $status.Reason | Should -Match 'corrupt' -Because "the file held '$garbage'"
                $status.Reason | Should -Match ([regex]::Escape($statusFile))
                $status.Reason | Should -Not -Match 'no status published'
            }
        }
    }

    Context 'Test-ReplicaRestore on a file replica' {
        BeforeAll {
            # One replica for every drill below: a replicator (separate pwsh) and the writer
            # (separate process) keep running for the first test, then stop for the damaged copies.
            $script:DrillDir = Join-Path $TestDrive 'drill'
            $script:DrillDb = (New-TestDatabase -Path (Join-Path $DrillDir 'app.db') -Rows 20).Path
            $script:DrillReplica = Join-Path $DrillDir 'replica'
            $script:DrillReplicator = Start-TestReplicator -DatabasePath $DrillDb -ReplicaPath $DrillReplica -LogPath (Join-Path $DrillDir 'replicator.log')
            $script:DrillWriter = Start-Writer write --db $DrillDb --count 0 --interval-ms 20 --rows-per-tx 2 --blob-bytes 300 -StdoutPath (Join-Path $DrillDir 'writer.out')
            $null = $DrillWriter | Wait-WriterProgress -MinimumId 150 -TimeoutSeconds 60

            function Invoke-ScheduledDrill {
                # What a scheduled job runs: pwsh -NoProfile -Command "Import-Module ...; Test-ReplicaRestore ...". Returns the exit code and output.
                param([Parameter(Mandatory)][string]$Arguments)
                $pwsh = Get-PwshCommand
                $command = "Import-Module '$($env:SQLITEREPLICA_MODULE.Replace("'", "''"))'; Test-ReplicaRestore $Arguments"
                Invoke-NativeProcess -FilePath $pwsh.FilePath -ArgumentList (@($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-Command', $command)) -TimeoutSeconds 120 -MergeStandardError
            }
        }

        AfterAll {
            foreach ($process in @($DrillWriter, $DrillReplicator)) {
                if ($process -and -not $process.HasExited) { $null = $process | Stop-TestProcess -Signal KILL -TimeoutSeconds 5 }
            }
        }

        It 'passes on a healthy replica while the replicator and the application run; -Quiet returns $true; a scheduled pwsh -Command exits 0' {
            $drill = Invoke-Drill @{ ReplicaPath = $DrillReplica; DatabasePath = $DrillDb; MaxLag = '30s' }
            $drill.Results.Count | Should -Be 1 -Because (Format-Drill $drill)
            $drill.Results[0].Status | Should -BeExactly 'Passed' -Because (Format-Drill $drill)
            $drill.Errors | Should -BeNullOrEmpty
            foreach ($name in 'Restore', 'Freshness', 'Integrity', 'Content') {
                ($drill.Results[0].Checks | Where-Object Name -eq $name).Outcome | Should -BeExactly 'Passed' -Because (Format-Drill $drill)
            }

            $quiet = Test-ReplicaRestore -ReplicaPath $DrillReplica -DatabasePath $DrillDb -MaxLag '30s' -Quiet
            $quiet | Should -BeOfType ([bool])
            $quiet | Should -BeTrue

            $job = Invoke-ScheduledDrill "-ReplicaPath '$DrillReplica' -DatabasePath '$DrillDb' -MaxLag '30s'"
            $job.ExitCode | Should -Be 0 -Because $job.StdOut
            $job.StdOut | Should -Match '\bPassed\b' -Because 'the job printed the drill result'
            $DrillWriter.HasExited | Should -BeFalse -Because 'the application wrote during all of this'
        }

        It 'takes -MaxLag written as in the documentation, unquoted (3s, 30s)' {
            # PowerShell reads a bare 3s as the number literal [short]3 (suffix s), not as the
            # string '3s': the duration parameters must take it all the same.
            { $null = Get-SqliteReplicationStatus -DatabasePath $DrillDb -MaxLag 3s -ErrorAction Stop } | Should -Not -Throw
            { $null = Test-ReplicaRestore -ReplicaPath $DrillReplica -MaxLag 30s -Quiet -ErrorAction Stop } | Should -Not -Throw
        }

        Context 'Damaged and stale replicas (the replicator and the application stopped)' {
            BeforeAll {
                $DrillWriter | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0
                $DrillReplicator | Stop-TestReplicator -TimeoutSeconds 40 | Should -Be 0
                # The newest generation is the one a drill restores; the damage is made inside its chain.
                $files = @(Get-ReplicaFile -ReplicaDir $DrillReplica)
                $script:DrillGeneration = ($files | Sort-Object LastWriteTimeUtc | Select-Object -Last 1).Generation
                $segments = @($files | Where-Object { $_.Generation -eq $DrillGeneration -and $_.Kind -eq 'wal' })
                $segments.Count | Should -BeGreaterOrEqual 4 -Because 'the writer ran long enough for several WAL segments'
                # Segments strictly inside the chain, each followed by another one of the same WAL index; biggest first.
                $script:InnerSegments = @($segments[1..($segments.Count - 2)] | Where-Object {
                        $segment = $_
                        @($segments | Where-Object { $_.Index -eq $segment.Index -and $_.Offset -gt $segment.Offset }).Count -gt 0
                    } | Sort-Object -Property Length -Descending)
                $InnerSegments.Count | Should -BeGreaterThan 0

                function New-DamagedCopy {
                    param([Parameter(Mandatory)][string]$Damage)
                    $copy = Copy-ReplicaDirectory -Source $DrillReplica -Destination (Join-Path $DrillDir "damaged-$Damage")
                    $victim = $InnerSegments[0]
                    $path = Join-Path $copy ([System.IO.Path]::GetRelativePath($DrillReplica, $victim.Path))
                    switch ($Damage) {
                        'MissingSegment' { Remove-Item -LiteralPath $path }
                        'TruncatedSegment' {
                            $stream = [System.IO.File]::Open($path, 'Open', 'ReadWrite')
                            try { $stream.SetLength([long]($victim.Length / 2)) } finally { $stream.Dispose() }
                        }
                        'FlippedByte' {
                            $bytes = [System.IO.File]::ReadAllBytes($path)
                            $at = [int]($bytes.Length / 2)
                            $bytes[$at] = $bytes[$at] -bxor 0xFF
                            [System.IO.File]::WriteAllBytes($path, $bytes)
                        }
                        'MissingSnapshot' {
                            Get-ReplicaFile -ReplicaDir $copy -Generation $DrillGeneration -Kind snapshot | ForEach-Object { Remove-Item -LiteralPath $_.Path }
                        }
                    }
                    $copy
                }
            }

            It 'passes on an intact copy of the stopped replica (the baseline of the damaged copies)' {
                $copy = Copy-ReplicaDirectory -Source $DrillReplica -Destination (Join-Path $DrillDir 'intact')
                $drill = Invoke-Drill @{ ReplicaPath = $copy; DatabasePath = $DrillDb; MaxLag = '5s' }
                $drill.Results[0].Status | Should -BeExactly 'Passed' -Because (Format-Drill $drill)
            }

            It 'is Skipped, never Passed, without a live database (alone, or a snapshot piped from Get-ReplicaSnapshot)' {
                $drill = Invoke-Drill @{ ReplicaPath = $DrillReplica }
                $drill.Results[0].Status | Should -BeExactly 'Skipped' -Because (Format-Drill $drill)
                ($drill.Results[0].Checks | Where-Object Name -eq 'Content').Outcome | Should -BeExactly 'Skipped'
                $piped = @(Get-ReplicaSnapshot -ReplicaPath $DrillReplica | Select-Object -Last 1 | Test-ReplicaRestore -ErrorAction Stop)
                $piped.Count | Should -Be 1
                $piped[0].Status | Should -BeExactly 'Skipped' -Because "$($piped[0])"
                ($piped[0].Checks | Where-Object Name -eq 'Restore').Outcome | Should -BeExactly 'Passed'
            }

            It 'fails the Restore check (<Code>) when <Title>' -ForEach @(
                @{ Damage = 'MissingSegment'; Code = 'SegmentMissing'; Title = 'a WAL segment inside the chain is missing' }
                @{ Damage = 'TruncatedSegment'; Code = 'SegmentCorrupt'; Title = 'a WAL segment is truncated' }
                @{ Damage = 'FlippedByte'; Code = 'SegmentCorrupt'; Title = 'one byte of a WAL segment is flipped' }
                @{ Damage = 'MissingSnapshot'; Code = 'SnapshotMissing'; Title = 'the snapshot is missing' }
            ) {
                $copy = New-DamagedCopy -Damage $Damage
                $drill = Invoke-Drill @{ ReplicaPath = $copy; DatabasePath = $DrillDb; MaxLag = '5s' }
                $drill.Results.Count | Should -Be 1 -Because (Format-Drill $drill)
                $drill.Results[0].Status | Should -BeExactly 'Failed' -Because (Format-Drill $drill)
                $restoreCheck = $drill.Results[0].Checks | Where-Object Name -eq 'Restore'
                $restoreCheck.Outcome | Should -BeExactly 'Failed' -Because (Format-Drill $drill)
                # The check's detail starts with the engine's error code.
                $restoreCheck.Detail | Should -Match "^$Code\b"
                @($drill.Results[0].Checks | Where-Object { $_.Name -in 'Integrity', 'Content' -and $_.Outcome -eq 'Passed' }) | Should -BeNullOrEmpty
                $drill.Errors.FullyQualifiedErrorId | Should -Contain $DrillFailedId
                Test-ReplicaRestore -ReplicaPath $copy -DatabasePath $DrillDb -MaxLag '5s' -Quiet -ErrorAction SilentlyContinue | Should -BeExactly $false
            }

            It 'fails Freshness or Content on a stale replica (live database written after the replicator stopped); -Quiet returns $false; a scheduled pwsh -Command exits non-zero' {
                $null = Invoke-Writer write --db $DrillDb --count 30 --rows-per-tx 3
                $drill = Invoke-Drill @{ ReplicaPath = $DrillReplica; DatabasePath = $DrillDb; MaxLag = '3s' }
                $drill.Results.Count | Should -Be 1 -Because (Format-Drill $drill)
                $drill.Results[0].Status | Should -BeExactly 'Failed' -Because (Format-Drill $drill)
                @($drill.Results[0].Checks | Where-Object { $_.Name -in 'Freshness', 'Content' -and $_.Outcome -eq 'Failed' }) | Should -Not -BeNullOrEmpty -Because (Format-Drill $drill)
                ($drill.Results[0].Checks | Where-Object Name -eq 'Restore').Outcome | Should -BeExactly 'Passed' -Because 'the replica itself is intact, only old'
                $drill.Errors.FullyQualifiedErrorId | Should -Contain $DrillFailedId

                Test-ReplicaRestore -ReplicaPath $DrillReplica -DatabasePath $DrillDb -MaxLag '3s' -Quiet -ErrorAction SilentlyContinue | Should -BeExactly $false

                $job = Invoke-ScheduledDrill "-ReplicaPath '$DrillReplica' -DatabasePath '$DrillDb' -MaxLag '3s'"
                $job.ExitCode | Should -Not -Be 0 -Because "a failed drill must fail the scheduled job: $($job.StdOut)"
            }
        }
    }

    Context 'The README runbook: recovery on a fresh box' {
        It 'restores from the bucket with -IfDbNotExists -IfReplicaExists, verifies with Test-ReplicaRestore, and replicates again' {
            # The box: /etc/litestream.yml as in the README (credentials from the env file,
            # region auto, path-style) and the database under pb/pb_data. Child processes trust
            # the proxy's test certificate through SSL_CERT_FILE, so the config needs no skip-verify.
            $box = Join-Path $TestDrive 'box'
            $db = Join-Path $box 'pb/pb_data/data.db'
            $config = Join-Path $box 'etc/litestream.yml'
            $envFile = Join-Path $box 'etc/sqlitereplica.env'
            $bucket = 'runbook-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
            $null = New-S3Bucket -Endpoint $Moto.Endpoint -Name $bucket
            $null = New-Item -ItemType Directory -Path (Join-Path $box 'etc') -Force
            [System.IO.File]::WriteAllText($config, (@(
                        'access-key-id: ${LITESTREAM_ACCESS_KEY_ID}'
                        'secret-access-key: ${LITESTREAM_SECRET_ACCESS_KEY}'
                        'dbs:'
                        "  - path: $db"
                        '    replicas:'
                        '      - type: s3'
                        "        endpoint: $($Proxy.Endpoint)"
                        "        bucket: $bucket"
                        '        path: taxwalaai/data.db'
                        '        region: auto'
                        '        force-path-style: true'
                        '        snapshot-interval: 12h'
                        '        retention: 72h'
                    ) -join "`n") + "`n")
            [System.IO.File]::WriteAllText($envFile, "LITESTREAM_ACCESS_KEY_ID=$env:LITESTREAM_ACCESS_KEY_ID`nLITESTREAM_SECRET_ACCESS_KEY=$env:LITESTREAM_SECRET_ACCESS_KEY`n")
            # The service gets the credentials from its EnvironmentFile (here: inherited); the
            # operator's shell does not have them until it reads the env file.
            $trust = @{ SSL_CERT_FILE = $Proxy.CertificatePath }
            $operatorShell = @{ SSL_CERT_FILE = $Proxy.CertificatePath; LITESTREAM_ACCESS_KEY_ID = $null; LITESTREAM_SECRET_ACCESS_KEY = $null }

            function Invoke-Runbook {
                # A fresh pwsh on the box: loads the env file as the README says, runs the script, returns its last JSON line.
                param([Parameter(Mandatory)][string]$Script)
                $path = Join-Path $box ("runbook-{0}.ps1" -f [guid]::NewGuid().ToString('N').Substring(0, 8))
                [System.IO.File]::WriteAllText($path, (@(
                            '$ErrorActionPreference = ''Stop'''
                            '$ProgressPreference = ''SilentlyContinue'''
                            "Import-Module -Name '$($env:SQLITEREPLICA_MODULE.Replace("'", "''"))'"
                            "Get-Content '$envFile' | ForEach-Object { `$k, `$v = `$_ -split '=', 2; Set-Item `"env:`$k`" `$v }"
                            $Script
                        ) -join [Environment]::NewLine))
                $pwsh = Get-PwshCommand
                $result = Invoke-NativeProcess -FilePath $pwsh.FilePath -ArgumentList (@($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $path)) -Environment $operatorShell -TimeoutSeconds 180 -MergeStandardError
                $result.ExitCode | Should -Be 0 -Because $result.StdOut
                $json = @($result.Lines | Where-Object { $_.StartsWith('{') }) | Select-Object -Last 1
                $json | Should -Not -BeNullOrEmpty -Because $result.StdOut
                $json | ConvertFrom-Json
            }

            # The old box replicates while the application writes, then is lost.
            $null = New-TestDatabase -Path $db -Rows 10
            $replicator = Start-ReplicatorProcess -Parameters @{ ConfigPath = $config } -LogPath (Join-Path $TestDrive 'runbook-old.log') -Environment $trust
            $Children.Add($replicator)
            $null = Wait-LogLine -Path $replicator.LogPath -Pattern 'replicating ' -TimeoutSeconds 60 -Process $replicator
            $writer = Start-Writer write --db $db --count 0 --interval-ms 10 --rows-per-tx 2 -StdoutPath (Join-Path $TestDrive 'runbook-old-writer.out')
            $Children.Add($writer)
            $null = $writer | Wait-WriterProgress -MinimumId 150 -TimeoutSeconds 60
            $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0
            $replicator | Stop-TestProcess -Signal TERM -TimeoutSeconds 40 -NoKill | Should -Be 0 -Because (Get-LogTail -Path $replicator.LogPath)
            $source = Get-DbDump -Path $db
            $source.maxId | Should -Be $writer.GetLastCommittedId()
            Move-Item -LiteralPath (Join-Path $box 'pb') -Destination (Join-Path $TestDrive 'lost-box')

            # 1-2. The fresh box: restore what is missing (twice: the second run must change nothing), then the drill.
            $null = New-Item -ItemType Directory -Path (Split-Path $db) -Force
            $first = Invoke-Runbook @"
`$restored = @(Restore-SqliteReplica -ConfigPath '$config' -DatabasePath '$db' -IfDbNotExists -IfReplicaExists)
`$hash = (Get-FileHash -LiteralPath '$db').Hash
`$again = @(Restore-SqliteReplica -ConfigPath '$config' -DatabasePath '$db' -IfDbNotExists -IfReplicaExists)
`$drill = Test-ReplicaRestore -ConfigPath '$config' -DatabasePath '$db'
[pscustomobject]@{
    Restored = `$restored.Count; Again = `$again.Count; Unchanged = (Get-FileHash -LiteralPath '$db').Hash -eq `$hash
    Status = `$drill.Status; Reason = `$drill.Reason; Checks = @(`$drill.Checks | ForEach-Object { "`$(`$_.Name)=`$(`$_.Outcome)" })
} | ConvertTo-Json -Compress
"@
            $first.Restored | Should -Be 1
            $first.Again | Should -Be 0 -Because '-IfDbNotExists must leave an existing database alone'
            $first.Unchanged | Should -BeTrue
            $first.Status | Should -BeExactly 'Passed' -Because "$($first.Reason) [$($first.Checks -join ', ')]"
            $restored = Get-DbDump -Path $db
            $restored.integrity | Should -Be 'ok'
            $restored.maxId | Should -Be $source.maxId
            $restored.digest | Should -Be $source.digest

            # 3. Start replicating (a new generation from the restored file), then the application.
            $replicator = Start-ReplicatorProcess -Parameters @{ ConfigPath = $config } -LogPath (Join-Path $TestDrive 'runbook-new.log') -Environment $trust
            $Children.Add($replicator)
            $null = Wait-LogLine -Path $replicator.LogPath -Pattern 'replicating ' -TimeoutSeconds 60 -Process $replicator
            $writer = Start-Writer write --db $db --count 0 --interval-ms 10 --rows-per-tx 2 -StdoutPath (Join-Path $TestDrive 'runbook-new-writer.out')
            $Children.Add($writer)
            $null = $writer | Wait-WriterProgress -MinimumId ($source.maxId + 100) -TimeoutSeconds 60
            $null = Wait-Until -TimeoutSeconds 30 -Message 'the fresh box replicating healthily' -Condition {
                @(Get-SqliteReplicationStatus -ConfigPath $config -ErrorAction Stop)[0].Healthy
            }
            $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0
            $replicator | Stop-TestProcess -Signal TERM -TimeoutSeconds 40 -NoKill | Should -Be 0 -Because (Get-LogTail -Path $replicator.LogPath)

            $target = Join-Path $TestDrive 'runbook-final/data.db'
            $null = New-Item -ItemType Directory -Path (Split-Path $target) -Force
            $final = Invoke-Runbook @"
`$result = Restore-SqliteReplica -ConfigPath '$config' -DatabasePath '$db' -OutputPath '$target'
[pscustomobject]@{ Generations = @(Get-ReplicaGeneration -ConfigPath '$config' -DatabasePath '$db').Count; Position = "`$(`$result.Position)" } | ConvertTo-Json -Compress
"@
            $final.Generations | Should -BeGreaterOrEqual 2 -Because 'the fresh box starts a new generation from the restored file'
            $after = Get-DbDump -Path $target
            $after.integrity | Should -Be 'ok'
            $after.maxId | Should -Be $writer.GetLastCommittedId()
            $after.digest | Should -Be (Get-DbDump -Path $db).digest
        }
    }
}

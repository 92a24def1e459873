#Requires -Version 7.6
# The runbooks in examples/ on a real setup: two databases written by the writer program,
# replicated with Start-SqliteReplication -ConfigPath to a bucket on moto_server behind the S3
# test proxy (HTTPS, skip-verify in the config, R2's request rules enforced), then a "fresh box"
# (the databases and their meta directories deleted) provisioned with Initialize-Box.ps1, checked
# with Invoke-NightlyDrill.ps1 (a separate pwsh that finds the module by name, as a scheduled job
# would) and copied with Restore-AllDatabases.ps1. The tests run in order: each step starts from
# the state the previous one left.
# Run through `build.ps1 Test`, which sets SQLITEREPLICA_MODULE and SQLITEREPLICA_WRITER; the
# proxy is found through SQLITEREPLICA_S3PROXY or out/tools/S3Proxy.

Describe 'The runbooks in examples/ against an S3 bucket' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'S3Fixture.psm1') -Force
        Import-Module -Name $env:SQLITEREPLICA_MODULE -Force -ErrorAction Stop

        $examples = Join-Path $PSScriptRoot '../../examples'
        $script:InitializeBox = Join-Path $examples 'Initialize-Box.ps1'
        $script:NightlyDrill = Join-Path $examples 'Invoke-NightlyDrill.ps1'
        $script:RestoreAll = Join-Path $examples 'Restore-AllDatabases.ps1'
        # The folder that holds the built module's folder: on PSModulePath, 'SqliteReplica' is found by name.
        $script:ModuleRoot = Split-Path -Parent (Split-Path -Parent (Resolve-Path -LiteralPath $env:SQLITEREPLICA_MODULE).ProviderPath)
        $script:Jobs = [System.Collections.Generic.List[object]]::new()

        # Any credentials do for moto; the config reads them from these variables.
        $script:SavedEnvironment = @{
            LITESTREAM_ACCESS_KEY_ID     = $env:LITESTREAM_ACCESS_KEY_ID
            LITESTREAM_SECRET_ACCESS_KEY = $env:LITESTREAM_SECRET_ACCESS_KEY
        }
        $env:LITESTREAM_ACCESS_KEY_ID = 'AKIASQLITEREPLICATEST'
        $env:LITESTREAM_SECRET_ACCESS_KEY = 'sqlitereplica-test-secret'
        $script:EnvironmentFile = Join-Path $TestDrive 'sqlitereplica.env'
        Set-Content -LiteralPath $EnvironmentFile -Encoding utf8NoBOM -Value @(
            '# as /etc/sqlitereplica.env'
            "LITESTREAM_ACCESS_KEY_ID=$env:LITESTREAM_ACCESS_KEY_ID"
            "LITESTREAM_SECRET_ACCESS_KEY='$env:LITESTREAM_SECRET_ACCESS_KEY'"
        )

        $script:Moto = Start-MotoServer -LogPath (Join-Path $TestDrive 'moto/moto.log')
        $proxy = Start-S3Proxy -Upstream $Moto.Endpoint -LogPath (Join-Path $TestDrive 's3proxy/s3proxy.log')
        $script:Bucket = New-S3Bucket -Endpoint $Moto.Endpoint -Name ('runbooks-{0}' -f [guid]::NewGuid().ToString('N').Substring(0, 8))

        # The box: two databases in their own folders, replicated by one config.
        $box = Join-Path $TestDrive 'box'
        $script:Databases = [ordered]@{
            app   = Join-Path $box 'app/app.db'
            queue = Join-Path $box 'queue/queue.db'
        }
        $script:ConfigPath = Join-Path $TestDrive 'litestream.yml'
        $yaml = @(
            'access-key-id: ${LITESTREAM_ACCESS_KEY_ID}'
            'secret-access-key: ${LITESTREAM_SECRET_ACCESS_KEY}'
            'dbs:'
            foreach ($name in $Databases.Keys) {
                "  - path: $($Databases[$name])"
                '    monitor-interval: 100ms'
                '    replicas:'
                '      - type: s3'
                "        bucket: $Bucket"
                "        path: $name.db"
                "        endpoint: $($proxy.Endpoint)"
                '        region: us-east-1'
                '        force-path-style: true'
                '        skip-verify: true'
                '        sync-interval: 200ms'
            }
        )
        Set-Content -LiteralPath $ConfigPath -Value $yaml -Encoding utf8NoBOM

        function Get-DatabaseDigest {
            # name -> the writer's content digest of each database (checked for integrity too).
            param([Parameter(Mandatory)][System.Collections.IDictionary]$Paths)
            $digests = [ordered]@{}
            foreach ($name in $Paths.Keys) {
                $dump = Get-DbDump -Path $Paths[$name]
                if ($dump.integrity -ne 'ok') { throw "'$($Paths[$name])' fails its integrity check: $($dump.integrity)" }
                $digests[$name] = $dump.digest
            }
            $digests
        }

        function Invoke-DrillProcess {
            # Invoke-NightlyDrill.ps1 in a separate pwsh that imports the module by name, as a
            # scheduled job does; returns ExitCode and Output.
            param([Parameter(Mandatory)][string]$ResultPath)
            $pwsh = Get-PwshCommand
            $arguments = @($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $NightlyDrill,
                '-ConfigPath', $ConfigPath, '-ResultPath', $ResultPath, '-MaxLag', '00:00:15')
            $result = Invoke-NativeProcess -FilePath $pwsh.FilePath -ArgumentList $arguments -MergeStandardError -TimeoutSeconds 180 -Environment @{
                PSModulePath = $ModuleRoot + [IO.Path]::PathSeparator + $env:PSModulePath
                NO_COLOR     = '1'
            }
            [pscustomobject]@{ ExitCode = $result.ExitCode; Output = $result.StdOut }
        }

        function Get-BucketKey {
            # Every object key in the bucket (moto directly: one page is enough here).
            [xml]$listing = (Invoke-WebRequest -Uri "$($Moto.Endpoint)/$($Bucket)?list-type=2&max-keys=1000" -UseBasicParsing).Content
            @($listing.ListBucketResult.Contents | ForEach-Object Key)
        }

        # --- The application and its replication, before the box is lost -------------------
        foreach ($name in $Databases.Keys) {
            $null = New-TestDatabase -Path $Databases[$name] -Rows 40
        }
        $job = Start-SqliteReplication -ConfigPath $ConfigPath -AsJob -JobName 'runbooks-before' -ErrorAction Stop
        $Jobs.Add($job)
        foreach ($name in $Databases.Keys) {
            $null = Invoke-Writer write --db $Databases[$name] --count 120 --rows-per-tx 12
        }
        $null = $job | Stop-Job
        $script:BeforeSummaries = @($job | Receive-Job | Where-Object { $_ -is [SqliteReplica.Output.ReplicationSummary] })
        $script:Originals = Get-DatabaseDigest -Paths $Databases

        # The fresh box: the databases, their -wal/-shm and their meta directories are gone.
        Remove-Item -LiteralPath $box -Recurse -Force
    }

    AfterAll {
        foreach ($job in $Jobs) {
            $job | Stop-Job -ErrorAction Ignore
            $job | Remove-Job -Force -ErrorAction Ignore
        }
        Stop-TestProcess -All
        foreach ($name in $SavedEnvironment.Keys) {
            [Environment]::SetEnvironmentVariable($name, $SavedEnvironment[$name])
        }
        Remove-Module -Name SqliteReplica -Force -ErrorAction Ignore
    }

    It 'starts from both databases replicated to the bucket and the box wiped' {
        @($BeforeSummaries | ForEach-Object CaughtUp) | Should -Be @($true, $true)
        foreach ($path in $Databases.Values) {
            $path | Should -Not -Exist
        }
        @(Get-BucketKey | Where-Object { $_ -like 'app.db/*' }).Count | Should -BeGreaterThan 0
        @(Get-BucketKey | Where-Object { $_ -like 'queue.db/*' }).Count | Should -BeGreaterThan 0
    }

    It 'Initialize-Box.ps1 restores both databases equal to the originals, drills them and starts replication' {
        $output = @(& $InitializeBox -ConfigPath $ConfigPath -EnvironmentFile $EnvironmentFile -AsJob -JobName 'runbooks-box')
        $script:BoxJob = @($output | Where-Object { $_ -is [System.Management.Automation.Job] })
        foreach ($job in $BoxJob) { $Jobs.Add($job) }
        $records = @($output | Where-Object { $_.PSObject.TypeNames -contains 'SqliteReplica.Examples.BoxDatabase' })

        @($records | ForEach-Object DatabasePath) | Should -Be @($Databases.Values)
        @($records | ForEach-Object Action) | Should -Be @('Restored', 'Restored')
        @($records | ForEach-Object { $_.Drill.Status }) | Should -Be @('Passed', 'Passed')
        @($records | ForEach-Object { $_.Restore.Partial }) | Should -Be @($false, $false)
        $BoxJob.Count | Should -Be 1
        $BoxJob[0].Name | Should -Be 'runbooks-box'
        $BoxJob[0].State | Should -Be 'Running'

        $restored = Get-DatabaseDigest -Paths $Databases
        foreach ($name in $Databases.Keys) {
            $restored[$name] | Should -Be $Originals[$name] -Because "$name.db must come back as it was"
        }
    }

    It 'Initialize-Box.ps1 leaves existing databases alone on a second run' {
        $before = Get-DatabaseDigest -Paths $Databases
        $output = @(& $InitializeBox -ConfigPath $ConfigPath 6>$null)
        @($output | ForEach-Object Action) | Should -Be @('Existing', 'Existing')
        @($output | Where-Object { $_ -is [System.Management.Automation.Job] }) | Should -BeNullOrEmpty
        (Get-DatabaseDigest -Paths $Databases)['app'] | Should -Be $before['app']
    }

    It 'the replication Initialize-Box.ps1 started ships new writes to the bucket' {
        foreach ($name in $Databases.Keys) {
            # Several transactions, a moment apart: several WAL segments in the new generation.
            for ($i = 0; $i -lt 3; $i++) {
                $null = Invoke-Writer write --db $Databases[$name] --count 30 --rows-per-tx 10
                Start-Sleep -Milliseconds 400
            }
        }
        $null = Wait-Until -TimeoutSeconds 60 -Message 'both replicas to confirm the newest local position' -Condition {
            $status = @(Get-SqliteReplicationStatus -ConfigPath $ConfigPath)
            $status.Count -eq 2 -and @($status | Where-Object { $_.Healthy -and $_.ConfirmedPosition -and $_.ConfirmedPosition -eq $_.LocalPosition }).Count -eq 2
        }
    }

    It 'Invoke-NightlyDrill.ps1 exits 0 and records Passed for every database while replication runs' {
        $resultPath = Join-Path $TestDrive 'drill/healthy.jsonl'
        $run = Invoke-DrillProcess -ResultPath $resultPath
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match ([regex]::Escape("Passed  $($Databases.app)  at "))
        $run.Output | Should -Match 'All 2 restore drill\(s\) passed'
        $lines = @(Get-Content -LiteralPath $resultPath | ConvertFrom-Json)
        @($lines | ForEach-Object DatabasePath) | Should -Be @($Databases.Values)
        @($lines | ForEach-Object Status) | Should -Be @('Passed', 'Passed')
        @($lines[0].Checks | ForEach-Object Name) | Should -Be @('Restore', 'Freshness', 'Integrity', 'Content')
    }

    It 'Restore-AllDatabases.ps1 restores both databases in parallel, equal to the live ones' {
        # Stop-Job makes the final sync: the replicas then hold exactly the live databases.
        $null = $BoxJob | Stop-Job
        $summaries = @($BoxJob | Receive-Job | Where-Object { $_ -is [SqliteReplica.Output.ReplicationSummary] })
        @($summaries | ForEach-Object CaughtUp) | Should -Be @($true, $true)

        $destination = Join-Path $TestDrive 'all'
        $results = @(& $RestoreAll -ConfigPath $ConfigPath -Destination $destination -ErrorAction Stop)
        $results.Count | Should -Be 2
        foreach ($result in $results) {
            $result | Should -BeOfType [SqliteReplica.Output.SqliteRestoreResult]
            $result.Partial | Should -BeFalse
        }
        $copies = [ordered]@{}
        foreach ($name in $Databases.Keys) { $copies[$name] = Join-Path $destination "$name.db" }
        @($results | ForEach-Object OutputPath | Sort-Object) | Should -Be @($copies.Values | Sort-Object)

        $live = Get-DatabaseDigest -Paths $Databases
        $restored = Get-DatabaseDigest -Paths $copies
        foreach ($name in $Databases.Keys) {
            $restored[$name] | Should -Be $live[$name] -Because "the copy of $name.db must equal the live database"
        }
    }

    It 'Restore-AllDatabases.ps1 refuses to overwrite without -Force, one error per database' {
        $destination = Join-Path $TestDrive 'all'
        $errors = $null
        $results = @(& $RestoreAll -ConfigPath $ConfigPath -Destination $destination -ErrorAction SilentlyContinue -ErrorVariable errors)
        $results | Should -BeNullOrEmpty
        @($errors).Count | Should -Be 2
    }

    It 'Invoke-NightlyDrill.ps1 exits 1 after a WAL segment of the current generation is deleted from the bucket' {
        # The newest generation of app.db (the one Initialize-Box's replication began) and its
        # first WAL segment: without it the chain from the snapshot is broken.
        $generation = @(Get-ReplicaGeneration -ConfigPath $ConfigPath -DatabasePath $Databases.app -ErrorAction Stop |
                Sort-Object UpdatedAt)[-1].Generation
        $segments = @(Get-BucketKey | Where-Object { $_ -like "app.db/generations/$generation/wal/*.wal.lz4" } | Sort-Object)
        $segments.Count | Should -BeGreaterThan 1 -Because 'the broken segment must not be the last one'
        # moto refuses an anonymous DELETE but checks no signature.
        $authorization = "AWS4-HMAC-SHA256 Credential=$env:LITESTREAM_ACCESS_KEY_ID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
        $null = Invoke-WebRequest -Method Delete -Uri "$($Moto.Endpoint)/$Bucket/$($segments[0])" -Headers @{ Authorization = $authorization } -UseBasicParsing
        Get-BucketKey | Should -Not -Contain $segments[0]

        $resultPath = Join-Path $TestDrive 'drill/broken.jsonl'
        $run = Invoke-DrillProcess -ResultPath $resultPath
        $run.ExitCode | Should -Be 1 -Because $run.Output
        $run.Output | Should -Match ([regex]::Escape("Failed  $($Databases.app)"))
        $run.Output | Should -Match ([regex]::Escape("Passed  $($Databases.queue)  at "))
        $run.Output | Should -Match 'SegmentMissing'
        $lines = @(Get-Content -LiteralPath $resultPath | ConvertFrom-Json)
        @($lines | ForEach-Object DatabasePath) | Should -Be @($Databases.Values)
        @($lines | ForEach-Object Status) | Should -Be @('Failed', 'Passed')
        $lines[0].Reason | Should -Not -BeNullOrEmpty
    }
}

#Requires -Version 7.4
# Self-tests of TestHelpers.psm1: the helpers the integration tests rely on
# must themselves be right (real processes, real signals, real mounts).

BeforeDiscovery {
    $script:IsRoot = (& id -u) -eq '0'
    $script:HasLitestream = -not [string]::IsNullOrWhiteSpace($env:SQLITEREPLICA_LITESTREAM)
}

Describe 'TestHelpers' -Tag Unit {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        $script:OwnPgid = [int]((Get-Content -LiteralPath "/proc/$PID/stat" -Raw).Split(')')[-1].Trim().Split(' ')[2])
    }

    AfterAll {
        Stop-TestProcess -All -Signal KILL -TimeoutSeconds 5
        Remove-TmpfsMount -All
    }

    Context 'Wait-Until' {
        It 'returns the first true value of the condition' {
            $state = @{ Calls = 0 }
            $result = Wait-Until { $state.Calls++; if ($state.Calls -ge 3) { "ready after $($state.Calls)" } } -TimeoutSeconds 5 -IntervalMilliseconds 10
            $result | Should -Be 'ready after 3'
        }

        It 'throws a TimeoutException that names what it waited for' {
            { Wait-Until { $false } -TimeoutSeconds 0.3 -Message 'the moon to turn blue' } |
                Should -Throw -ExceptionType ([System.TimeoutException]) -ExpectedMessage '*the moon to turn blue*'
        }

        It 'quotes the last error thrown by the condition' {
            { Wait-Until { throw 'database is locked' } -TimeoutSeconds 0.3 -Message 'a query' } |
                Should -Throw -ExpectedMessage '*database is locked*'
        }
    }

    Context 'Wait-LogLine' {
        It 'finds a line written later by another process and returns its groups' {
            $p = Start-TestProcess -FilePath /bin/sh -ArgumentList '-c', 'sleep 0.3; echo "starting"; echo "listening port=4321 ok"; sleep 30' -LogPath "$TestDrive/late.log"
            $m = Wait-LogLine -Path $p.LogPath -Pattern 'port=(?<port>\d+)' -TimeoutSeconds 10 -Process $p
            $m.Groups['port'].Value | Should -Be '4321'
            $m.Line | Should -Be 'listening port=4321 ok'
            $p | Stop-TestProcess -Signal KILL
        }

        It 'continues after a previous match with -Offset, or picks the N-th with -Count' {
            Set-Content -LiteralPath "$TestDrive/seq.log" -Value 'step 1', 'other', 'step 2', 'step 3'
            $first = Wait-LogLine -Path "$TestDrive/seq.log" -Pattern '^step (\d)$' -TimeoutSeconds 1
            $first.Groups[1].Value | Should -Be '1'
            $next = Wait-LogLine -Path "$TestDrive/seq.log" -Pattern '^step (\d)$' -Offset $first.EndOffset -TimeoutSeconds 1
            $next.Groups[1].Value | Should -Be '2'
            (Wait-LogLine -Path "$TestDrive/seq.log" -Pattern '^step (\d)$' -Count 3 -TimeoutSeconds 1).Line | Should -Be 'step 3'
        }

        It 'fails at once, quoting the log, when the watched process exits without the line' {
            $p = Start-TestProcess -FilePath /bin/sh -ArgumentList '-c', 'echo "fatal: no config"; exit 3' -LogPath "$TestDrive/early.log"
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            { Wait-LogLine -Path $p.LogPath -Pattern 'ready' -TimeoutSeconds 30 -Process $p } |
                Should -Throw -ExpectedMessage '*exited with code 3*fatal: no config*'
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 10
        }

        It 'times out on a missing file with a clear message' {
            { Wait-LogLine -Path "$TestDrive/none.log" -Pattern 'x' -TimeoutSeconds 0.3 } |
                Should -Throw -ExceptionType ([System.TimeoutException]) -ExpectedMessage '*none.log*'
        }
    }

    Context 'Process groups and signals' {
        It 'starts a program as the leader of its own process group, with its output in the log' {
            $p = Start-TestProcess -FilePath /bin/sh -ArgumentList '-c', 'echo out; echo err >&2; sleep 300 & sleep 300 & wait' -LogPath "$TestDrive/group.log"
            $p.Pgid | Should -Be $p.Pid
            $p.Pgid | Should -Not -Be $script:OwnPgid
            Wait-Until { @(Get-ProcessGroupMember -Pgid $p.Pgid).Count -eq 3 } -TimeoutSeconds 10 -Message 'sh and two sleeps in the group'
            Wait-Until { $p.ReadLog() -match 'out' -and $p.ReadLog() -match 'err' } -TimeoutSeconds 5 -Message 'stdout and stderr in the log'

            $p | Send-ProcessGroupSignal -Signal KILL
            $null = $p | Wait-ProcessGroupExit -TimeoutSeconds 10
            @(Get-ProcessGroupMember -Pgid $p.Pgid).Count | Should -Be 0
            $p | Wait-TestProcess -TimeoutSeconds 5 | Should -Be 137
        }

        It 'stops and continues a whole group with STOP and CONT' {
            $p = Start-TestProcess -FilePath sleep -ArgumentList 300 -LogPath "$TestDrive/stop.log"
            Stop-ProcessGroup -Pgid $p.Pgid -Signal STOP
            Wait-Until { (Get-ProcessGroupMember -Pgid $p.Pgid).State -eq 'T' } -TimeoutSeconds 5 -Message 'state T (stopped)'
            Send-ProcessGroupSignal -Pgid $p.Pgid -Signal CONT
            Wait-Until { (Get-ProcessGroupMember -Pgid $p.Pgid).State -eq 'S' } -TimeoutSeconds 5 -Message 'state S (sleeping)'
            $p | Stop-TestProcess -Signal TERM | Should -Be 143
        }

        It 'Wait-ProcessGroupExit times out listing the survivors' {
            $p = Start-TestProcess -FilePath sleep -ArgumentList 301 -LogPath "$TestDrive/survivor.log"
            { Wait-ProcessGroupExit -Pgid $p.Pgid -TimeoutSeconds 0.3 } |
                Should -Throw -ExceptionType ([System.TimeoutException]) -ExpectedMessage '*sleep 301*'
            $p | Stop-TestProcess -Signal KILL
        }

        It 'Stop-TestProcess escalates to SIGKILL when SIGTERM is ignored, unless -NoKill' {
            $p = Start-TestProcess -FilePath /bin/sh -ArgumentList '-c', 'trap "" TERM; echo trapped; sleep 300' -LogPath "$TestDrive/stubborn.log"
            $null = Wait-LogLine -Path $p.LogPath -Pattern 'trapped' -TimeoutSeconds 5
            { $p | Stop-TestProcess -Signal TERM -TimeoutSeconds 0.5 -NoKill } | Should -Throw -ExceptionType ([System.TimeoutException])
            $p | Stop-TestProcess -Signal TERM -TimeoutSeconds 0.5 -WarningAction SilentlyContinue | Should -Be 137
        }

        It 'refuses to signal a group that no longer exists unless told to ignore it' {
            $p = Start-TestProcess -FilePath /bin/true -LogPath "$TestDrive/true.log"
            $p | Wait-TestProcess -TimeoutSeconds 5 | Should -Be 0
            { $p | Send-ProcessGroupSignal -Signal TERM } | Should -Throw
            { $p | Send-ProcessGroupSignal -Signal TERM -IgnoreMissing } | Should -Not -Throw
        }

        It 'runs a script in a separate pwsh that is a single process and dies of SIGTERM' {
            $p = Start-PwshProcess -Script '"child pid=$PID"; Start-Sleep -Seconds 120' -LogPath "$TestDrive/pwsh.log"
            $m = Wait-LogLine -Path $p.LogPath -Pattern 'child pid=(\d+)' -TimeoutSeconds 30 -Process $p
            # The process started is pwsh itself, not a dotnet muxer in front of it.
            [int]$m.Groups[1].Value | Should -Be $p.Pid
            @(Get-ProcessGroupMember -Pgid $p.Pgid).Count | Should -Be 1
            $p | Send-ProcessGroupSignal -Signal TERM
            $p | Wait-TestProcess -TimeoutSeconds 20 | Should -Be 143
        }

        It 'runs native programs to completion and kills them on timeout' {
            $r = Invoke-NativeProcess -FilePath /bin/sh -ArgumentList '-c', 'echo "a b"; echo oops >&2; exit 5'
            $r.ExitCode | Should -Be 5
            $r.Lines | Should -Be @('a b')
            $r.StdErr.Trim() | Should -Be 'oops'
            { Invoke-NativeProcess -FilePath sleep -ArgumentList 30 -TimeoutSeconds 0.5 } | Should -Throw -ExceptionType ([System.TimeoutException])
        }
    }

    Context 'The test writer plumbing (with a stand-in writer script)' {
        BeforeAll {
            $script:SavedWriter = $env:SQLITEREPLICA_WRITER
            $fake = Join-Path $TestDrive 'fake-writer'
            Set-Content -LiteralPath $fake -Value @(
                '#!/bin/sh'
                'case "$1" in'
                '  write) i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo "committed $i"; sleep 0.02; done ;;'
                '  dump) echo "opening"; echo ''{"integrity":"ok","digest":"abc","tables":{"t":3},"maxId":3}'' ;;'
                '  *) echo "unknown command $1" >&2; exit 2 ;;'
                'esac'
            )
            & chmod +x $fake
            $env:SQLITEREPLICA_WRITER = $fake
        }
        AfterAll {
            $env:SQLITEREPLICA_WRITER = $script:SavedWriter
        }

        It 'runs a .dll writer through the dotnet host and anything else directly' {
            $dll = Join-Path $TestDrive 'Writer.dll'
            Set-Content -LiteralPath $dll -Value ''
            $viaDotnet = Get-WriterCommand -WriterPath $dll
            [System.IO.Path]::GetFileNameWithoutExtension($viaDotnet.FilePath) | Should -Be 'dotnet'
            $viaDotnet.PrefixArguments | Should -Be @($dll)
            (Get-WriterCommand).FilePath | Should -Be $env:SQLITEREPLICA_WRITER
        }

        It 'Invoke-Writer throws with stderr on a non-zero exit' {
            { Invoke-Writer frobnicate --db x } | Should -Throw -ExpectedMessage '*exit code 2*unknown command frobnicate*'
        }

        It 'Get-DbDump parses the JSON line' {
            $dump = Get-DbDump -Path "$TestDrive/any.db"
            $dump.integrity | Should -Be 'ok'
            $dump.maxId | Should -Be 3
            $dump.tables.t | Should -Be 3
        }

        It 'Start-Writer reports the last committed id while it runs' {
            $w = Start-Writer write --db "$TestDrive/any.db" --interval-ms 20 -StdoutPath "$TestDrive/writer.out"
            $id = $w | Wait-WriterProgress -MinimumId 10 -TimeoutSeconds 20
            $id | Should -BeGreaterOrEqual 10
            $w | Send-ProcessGroupSignal -Signal KILL
            $w | Wait-TestProcess -TimeoutSeconds 5 | Should -Be 137
            $last = $w.GetLastCommittedId()
            $last | Should -BeGreaterOrEqual $id
            $last | Should -BeLessThan 200
        }
    }

    Context 'tmpfs mounts' -Skip:(-not $script:IsRoot) {
        It 'a read-only mount refuses writes, even from root' {
            $ro = New-TmpfsMount -ReadOnly
            { [System.IO.File]::WriteAllText("$ro/x", 'data') } | Should -Throw -ExpectedMessage '*Read-only file system*'
            Remove-TmpfsMount -Path $ro
            Test-Path -LiteralPath $ro | Should -BeFalse
        }

        It 'a small mount fills up, and frees space again' {
            $small = New-TmpfsMount -Size 64k
            { [System.IO.File]::WriteAllBytes("$small/big", [byte[]]::new(100KB)) } | Should -Throw -ExpectedMessage '*No space left on device*'
            Remove-Item -LiteralPath "$small/big" -ErrorAction SilentlyContinue
            $filler = New-FillerFile -Directory $small
            $filler.Length | Should -BeGreaterThan 0
            { [System.IO.File]::WriteAllText("$small/more", 'x') } | Should -Throw -ExpectedMessage '*No space left on device*'
            Remove-Item -LiteralPath $filler.FullName
            { [System.IO.File]::WriteAllText("$small/more", 'x') } | Should -Not -Throw
            Remove-TmpfsMount -Path $small
        }

        It 'remounts read-only and back in place, keeping the files' {
            $m = New-TmpfsMount -Size 1m -Path "$TestDrive/mnt"
            Set-Content -LiteralPath "$m/keep" -Value 'kept'
            Set-TmpfsMountMode -Path $m -Mode ReadOnly
            { [System.IO.File]::WriteAllText("$m/new", 'x') } | Should -Throw -ExpectedMessage '*Read-only file system*'
            Get-Content -LiteralPath "$m/keep" | Should -Be 'kept'
            Set-TmpfsMountMode -Path $m -Mode ReadWrite
            { [System.IO.File]::WriteAllText("$m/new", 'x') } | Should -Not -Throw
            Remove-TmpfsMount -Path $m
        }

        It 'tolerates removing a mount twice' {
            $m = New-TmpfsMount -Size 64k
            Remove-TmpfsMount -Path $m
            { Remove-TmpfsMount -Path $m } | Should -Not -Throw
        }
    }

    Context 'Replica layout' {
        It 'parses generations, indexes and hex offsets, ignoring what Litestream ignores' {
            $gen = Join-Path $TestDrive 'replica/generations/0123456789abcdef'
            $null = New-Item -ItemType Directory -Path "$gen/snapshots", "$gen/wal", "$TestDrive/replica/generations/0123456789ABCDEF/wal"
            foreach ($name in 'snapshots/00000001.snapshot.lz4', 'wal/00000001_00001038.wal.lz4', 'wal/00000001_00000000.wal.lz4',
                'wal/0000000a_00000000.wal.lz4', 'wal/00000001_00002070.wal.lz4.tmp', 'snapshots/notes.txt') {
                Set-Content -LiteralPath (Join-Path $gen $name) -Value 'x'
            }
            Set-Content -LiteralPath "$TestDrive/replica/generations/0123456789ABCDEF/wal/00000000_00000000.wal.lz4" -Value 'x'

            $files = @(Get-ReplicaFiles -ReplicaDir "$TestDrive/replica")
            $files.Count | Should -Be 4
            ($files | ForEach-Object { "$($_.Kind) $($_.Index) $($_.Offset)" }) |
                Should -Be @('snapshot 1 0', 'wal 1 0', 'wal 1 4152', 'wal 10 0')
            $files[0].Generation | Should -Be '0123456789abcdef'
            @(Get-ReplicaFile -ReplicaDir "$TestDrive/replica" -Kind wal).Count | Should -Be 3
            @(Get-ReplicaFile -ReplicaDir "$TestDrive/nothing-here").Count | Should -Be 0
        }
    }

    Context 'Litestream' -Skip:(-not $script:HasLitestream) {
        It 'runs the pinned litestream v0.3.13' {
            $r = Invoke-Litestream version
            $r.ExitCode | Should -Be 0
            $r.Output.Trim() | Should -Be 'v0.3.13'
        }

        It 'passes single-dash flags through after --, merging stderr into the output' {
            $r = Invoke-Litestream -- restore -o "$TestDrive/out.db" -if-replica-exists "file://$TestDrive/no-replica"
            $r.ExitCode | Should -Be 0
            $r.Output | Should -Match 'no matching backups found'
        }

        It 'writes a config that litestream accepts' {
            $config = New-LitestreamConfig -DbPath "$TestDrive/db/app.db" -ReplicaDir "$TestDrive/rep" -Path "$TestDrive/ls.yml" -SnapshotInterval 1h
            $r = Invoke-Litestream -- databases -config $config
            $r.ExitCode | Should -Be 0 -Because $r.Output
            $r.Output | Should -Match ([regex]::Escape("$TestDrive/db/app.db"))
        }
    }
}

#Requires -Version 7.6
# The reliability campaign (tests/Chaos/Invoke-Chaos.ps1) in Quick mode inside the normal run, a
# few minutes: real replicators killed with SIGKILL and at every crash point, the application
# killed mid-transaction and mid-checkpoint, S3 faults through the fault proxy, second writers, a
# long outage, hostile input, secret scanning and a 75 s soak. The fuzz targets run in the xunit
# suite (a seeded short run); their long run is `build.ps1 Chaos` (Fuzz campaign). The campaign writes its report and JSON into TestDrive (the committed
# docs/reliability.md is only rewritten by `build.ps1 Chaos`); each test below asserts one
# campaign's goals from that JSON and quotes the campaign's findings when a goal is missed.
# Run through `build.ps1 Test`, which sets SQLITEREPLICA_MODULE, SQLITEREPLICA_WRITER and
# SQLITEREPLICA_S3PROXY. SQLITEREPLICA_CHAOS_SEED replays a run (the seed is printed).

Describe 'Reliability campaign (Quick mode)' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force

        $script:OutDir = Join-Path $TestDrive 'chaos'
        $report = Join-Path $TestDrive 'reliability.md'
        $campaign = Join-Path $PSScriptRoot '../Chaos/Invoke-Chaos.ps1'
        $pwsh = Get-PwshCommand
        $arguments = @($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $campaign, '-Mode', 'Quick', '-Campaign', 'Crash,WriterCrash,Network,TwoWriters,StoreDown,Hostile,Security,Soak', '-OutputDirectory', $script:OutDir, '-ReportPath', $report)
        # The campaign's own exit code is 1 when a goal is missed; the tests below say which.
        $script:Run = Invoke-NativeProcess -FilePath $pwsh.FilePath -ArgumentList $arguments -TimeoutSeconds 900 -MergeStandardError -Environment @{ NO_COLOR = '1' }
        foreach ($line in @($script:Run.Lines | Select-Object -Last 14)) { Write-Host "    $line" }

        function Get-CampaignResult {
            param([Parameter(Mandatory)][string]$Name)
            $file = Join-Path $script:OutDir "$($Name.ToLowerInvariant()).json"
            if (-not (Test-Path -LiteralPath $file)) { throw "The campaign wrote no result for $Name. Its output:$([Environment]::NewLine)$($script:Run.StdOut)" }
            [System.IO.File]::ReadAllText($file) | ConvertFrom-Json
        }

        function Assert-CampaignGoals {
            # Every figure of the campaign that has a goal met it; the message lists the missed ones and the findings.
            param([Parameter(Mandatory)][string]$Name, [string[]]$Figures = @())
            $result = Get-CampaignResult -Name $Name
            $result.HarnessError | Should -BeNullOrEmpty -Because "the $Name campaign must run to its end"
            $goals = @($result.Figures | Where-Object { $null -ne $_.Met })
            $goals.Count | Should -BeGreaterThan 0 -Because "the $Name campaign has goals"
            foreach ($figure in $Figures) {
                @($goals | Where-Object Name -like $figure).Count | Should -BeGreaterThan 0 -Because "the $Name campaign reports '$figure'"
            }
            $missed = @($goals | Where-Object { -not $_.Met })
            $findings = (@($result.Findings) | ForEach-Object { "$($_.Title): $($_.Evidence)" }) -join [Environment]::NewLine
            $text = ($missed | ForEach-Object { "'$($_.Name)' = $($_.Value) (goal $($_.Goal))" }) -join '; '
            $missed.Count | Should -Be 0 -Because "every goal of the $Name campaign must be met; missed: $text$([Environment]::NewLine)findings:$([Environment]::NewLine)$findings"
        }
    }

    It 'ran every campaign and the harness self-checks catch planted defects' {
        $summary = [System.IO.File]::ReadAllText((Join-Path $script:OutDir 'summary.json')) | ConvertFrom-Json
        Write-Host "    seed $($summary.Seed), $($summary.Seconds) s"
        $summary.HarnessErrors | Should -Be 0 -Because $script:Run.StdOut
        @($summary.Campaigns | Sort-Object) | Should -Be @('Controls', 'Crash', 'WriterCrash', 'Network', 'TwoWriters', 'StoreDown', 'Hostile', 'Security', 'Soak' | Sort-Object)
        Assert-CampaignGoals -Name 'Controls' -Figures 'Self-checks passed*'
    }

    It 'replicator crash: every crash point reached, no inconsistent restore, no confirmed position missing' {
        Assert-CampaignGoals -Name 'Crash' -Figures 'Crash-point trials*', 'Inconsistent restores*', 'Confirmed positions missing*', 'Final restore*'
    }

    It 'application crash: the replica never holds an uncommitted transaction and catches up to the live database' {
        Assert-CampaignGoals -Name 'WriterCrash' -Figures 'Restores holding an uncommitted*', 'Replica equal to the live database*'
    }

    It 'network faults: no commit lost' {
        Assert-CampaignGoals -Name 'Network' -Figures 'Commits lost*', 'Final restore*'
    }

    It 'two writers: every second replicator refused with AlreadyReplicating within seconds' {
        Assert-CampaignGoals -Name 'TwoWriters' -Figures 'Second replicators refused*', 'Slowest refusal*'
    }

    It 'store down: status turns unhealthy, a burst takes the shadow to its cap and continuity is given up, it recovers, and nothing committed is lost' {
        Assert-CampaignGoals -Name 'StoreDown' -Figures 'Status unhealthy*', 'Continuity given up when the burst*', 'Nothing committed lost*'
    }

    It 'hostile input: at least 40 cases, each with a clear error id or the right result, nothing overwritten, no wrong database' {
        Assert-CampaignGoals -Name 'Hostile' -Figures 'Cases run', 'Unclear errors*', 'Wrong or silently incomplete*', 'Cases that overwrote*'
    }

    It 'security: no secret in any output, no world-readable file' {
        Assert-CampaignGoals -Name 'Security' -Figures 'Secret hits', 'World-readable*', 'Key ids*'
    }

    It 'soak: memory, meta directory and replicas bounded; the final and point-in-time restores exact' {
        Assert-CampaignGoals -Name 'Soak' -Figures 'Replicator RSS*', 'Meta directory bounded*', 'Bucket bounded*', 'Restore at the end*', 'Point-in-time restore*', 'Replay oracle*'
    }
}

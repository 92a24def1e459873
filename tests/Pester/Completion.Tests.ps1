# Tab completion: -DatabasePath from the -ConfigPath file, -Generation from the replica itself.
BeforeAll {
    Import-Module $env:SQLITEREPLICA_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force

    function Get-Completion([string] $Line) {
        (TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches
    }
}

Describe 'Argument completion' -Tag Integration {
    BeforeAll {
        $dir = Join-Path $TestDrive 'completion'
        New-Item -ItemType Directory -Path $dir | Out-Null
        $script:Alpha = Join-Path $dir 'alpha.db'
        $script:Beta = Join-Path $dir 'beta.db'
        $script:Replica = Join-Path $dir 'replica'
        $script:Config = Join-Path $dir 'litestream.yml'
        @"
dbs:
  - path: $Alpha
    replicas:
      - type: file
        path: $Replica
  - path: $Beta
    replicas:
      - type: file
        path: $(Join-Path $dir 'replica-beta')
"@ | Set-Content -LiteralPath $Config

        $null = New-TestDatabase -Path $Alpha -Rows 5
        $job = Start-SqliteReplication -DatabasePath $Alpha -ReplicaPath $Replica -AsJob
        Wait-Until -TimeoutSeconds 30 -Message 'a generation in the replica' -Condition { @(Get-ReplicaGeneration -ReplicaPath $Replica).Count -ge 1 }
        $job | Stop-Job
        $job | Remove-Job
        $script:Generation = @(Get-ReplicaGeneration -ReplicaPath $Replica)[-1].Generation
    }

    It 'completes -DatabasePath with the databases of the -ConfigPath file' {
        $found = Get-Completion "Restore-SqliteReplica -ConfigPath '$Config' -DatabasePath "
        @($found.CompletionText) | Should -Contain $Alpha
        @($found.CompletionText) | Should -Contain $Beta
    }

    It 'completes -DatabasePath by prefix' {
        $found = Get-Completion "Get-ReplicaSnapshot -ConfigPath '$Config' -DatabasePath $($Beta.Substring(0, $Beta.Length - 4))"
        @($found.CompletionText) | Should -Be @($Beta)
    }

    It 'completes -Generation with the generations really in the replica' {
        $found = Get-Completion "Restore-SqliteReplica -ReplicaPath '$Replica' -OutputPath x.db -Generation "
        @($found.CompletionText) | Should -Contain $Generation
        $found[0].ToolTip | Should -Match 'snapshot'
    }

    It 'offers nothing rather than failing when the replica does not exist' {
        $found = Get-Completion "Get-ReplicaWalSegment -ReplicaPath '$(Join-Path $TestDrive 'missing')' -Generation "
        @($found | Where-Object { $_.CompletionText -match '^[0-9a-f]{16}$' }) | Should -BeNullOrEmpty
    }
}

# Campaign i: fuzzing. Runs the xunit fuzz targets of tests/Engine.Tests (Category=Fuzz) for a fixed
# time per target with a seed derived from the campaign's, and reports what each target ran.

function Invoke-FuzzCampaign {
    param([Parameter(Mandatory)]$Result)
    $perTarget = if ($env:SQLITEREPLICA_FUZZ_SECONDS) { [double]$env:SQLITEREPLICA_FUZZ_SECONDS } elseif ($Chaos.Quick) { 20 } else { 300 }
    $seed = (Get-ChaosRandom -Name 'Fuzz').Next(1, [int]::MaxValue)
    $Result.Title = "i. Fuzzing: the WAL reader, the LZ4 frame path and the config loader against mutated input ($perTarget s per target)"
    $Result.Description = (
        "dotnet test --filter Category=Fuzz with SQLITEREPLICA_FUZZ_SECONDS=$perTarget and SQLITEREPLICA_FUZZ_SEED=$seed (tests/Engine.Tests/Fuzz). " +
        'Each target mutates valid seeds (bit flips, byte sets, truncation, extension, splicing with another seed, chunk duplication, deletion, ' +
        'insertion; structured: WAL header and frame fields changed with the checksum chain recomputed, YAML values of wrong types, huge numbers, ' +
        'unicode and control characters, unset variables, alias bombs, deep nesting, huge keys and values). Targets: lz4 (VerifiedLz4Stream over a ' +
        'mutated frame), wal-restore (a full restore of a file replica whose WAL segment bytes are mutated and re-framed), stored-object-restore (a ' +
        'full restore with a mutated stored .lz4 snapshot or segment), shadow-wal-reader (the upload path''s verified copy of a mutated shadow WAL), ' +
        'config (litestream.yml parsed, checked and turned into replica clients). Oracle: every input succeeds (a successful restore must also ' +
        'pass integrity_check) or fails with the module''s ReplicaException and a code other than Internal, within 20 s; anything else is a failure ' +
        'printed with its seed, iteration, mutation and the input in hex (SQLITEREPLICA_FUZZ_REPLAY=<seed>:<iteration> or ' +
        'SQLITEREPLICA_FUZZ_INPUT=<file> replays it). The normal dotnet test run includes the same targets for 3 s each with a fixed seed.')

    $dir = Join-Path $Chaos.Scratch 'fuzz'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $report = Join-Path $dir 'fuzz.jsonl'
    $log = Join-Path $dir 'dotnet-test.log'
    $project = Join-Path $Chaos.RepoRoot 'tests/Engine.Tests/SqliteReplica.Engine.Tests.csproj'
    $variables = @{ SQLITEREPLICA_FUZZ_SECONDS = [string]$perTarget; SQLITEREPLICA_FUZZ_SEED = [string]$seed; SQLITEREPLICA_FUZZ_REPORT = $report }
    $saved = @{}
    foreach ($name in $variables.Keys) {
        $saved[$name] = [Environment]::GetEnvironmentVariable($name)
        [Environment]::SetEnvironmentVariable($name, $variables[$name])
    }
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    try {
        Write-ChaosLine 'Fuzz' "dotnet test --filter Category=Fuzz, $perTarget s per target, seed $seed"
        $run = Invoke-NativeProcess -FilePath 'dotnet' -ArgumentList @('test', $project, '-c', 'Release', '--nologo', '--filter', 'Category=Fuzz', '--logger', 'console;verbosity=normal') -TimeoutSeconds ([Math]::Max(600, 8 * $perTarget + 600))
        [System.IO.File]::WriteAllText($log, "$($run.StdOut)`n$($run.StdErr)")
    }
    finally {
        foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) }
    }

    $lines = if (Test-Path -LiteralPath $report) { @([System.IO.File]::ReadAllLines($report) | Where-Object { $_.Trim() }) } else { @() }
    $outcomes = @($lines | ForEach-Object { $_ | ConvertFrom-Json })
    $expected = @('lz4', 'wal-restore', 'stored-object-restore', 'shadow-wal-reader', 'config')
    $totalInputs = 0L
    $totalFailures = 0L
    foreach ($name in $expected) {
        $o = $outcomes | Where-Object target -eq $name | Select-Object -Last 1
        if (-not $o) {
            $Result.Rows.Add([pscustomobject][ordered]@{ Target = $name; Seconds = $null; Inputs = 0; Succeeded = 0; ClearErrors = 'did not run'; Failures = $null; FirstFailure = '' })
            continue
        }
        $errorText = (@($o.errors.PSObject.Properties | Sort-Object Name | ForEach-Object { "$($_.Name) $($_.Value)" }) -join ', ')
        $Result.Rows.Add([pscustomobject][ordered]@{ Target = $name; Seconds = $o.seconds; Inputs = $o.inputs; Succeeded = $o.succeeded; ClearErrors = $errorText; Failures = $o.failures; FirstFailure = [string]$o.firstFailure })
        $totalInputs += $o.inputs
        $totalFailures += $o.failures
        if ($o.failures -gt 0) {
            $Result.Findings.Add((New-ChaosFinding -Campaign 'Fuzz' -Title "Fuzz target ${name}: $($o.failures) input(s) broke the oracle" -Evidence "seed $($o.seed): $($o.firstFailure) (full inputs in the dotnet test output)"))
        }
    }
    $Result.RowColumns = @('Target', 'Seconds', 'Inputs', 'Succeeded', 'ClearErrors', 'Failures', 'FirstFailure')
    $ran = @($expected | Where-Object { $n = $_; $outcomes | Where-Object target -eq $n })
    $minInputs = @($Result.Rows | ForEach-Object { [long]$_.Inputs } | Measure-Object -Minimum).Minimum
    $Result.Figures.Add((New-ChaosFigure -Name 'Targets run' -Value "$($ran.Count) of $($expected.Count)" -Goal 'all' -Met ($ran.Count -eq $expected.Count) -Note "dotnet test exit $($run.ExitCode) in $([Math]::Round($watch.Elapsed.TotalSeconds)) s (build included); seed $seed"))
    $Result.Figures.Add((New-ChaosFigure -Name 'Inputs run (all targets)' -Value ('{0:N0}' -f $totalInputs) -Goal '>= 100 per target' -Met ($minInputs -ge 100) -Note "fewest in one target: $minInputs"))
    $Result.Figures.Add((New-ChaosFigure -Name 'Inputs that crashed, hung or gave an unclear error' -Value $totalFailures -Goal '0' -Met ($totalFailures -eq 0 -and $run.ExitCode -eq 0) -Note $(if ($run.ExitCode -ne 0 -and $totalFailures -eq 0) { "dotnet test failed: $(Limit-Text (($run.StdOut -split "`n" | Select-String -Pattern 'error|Failed|Aborted' | Select-Object -First 4) -join ' | ') 300)" } else { '' })))
    $Result.Notes.Add('Defects fuzzing found and fixed before this run (each kept as a regression case in tests/Engine.Tests/Fuzz): a litestream.yml nested a few thousand levels deep overflowed the stack (process killed); YamlDotNet threw InvalidOperationException (its scanner) or ArgumentException (its node loader, an anchor on an empty key) on some malformed YAML; an endpoint the AWS SDK refuses (bad scheme, or empty) escaped as AmazonClientException; a path with a NUL character escaped as ArgumentException; a shadow WAL truncated below its recorded range made the upload throw EndOfStreamException, retried for ever instead of starting a new generation.')
}

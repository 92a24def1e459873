#Requires -Version 7.6
# The built module as a whole: its manifest and exports, its on-disk layout, and the
# dependency isolation that lets it share a session with modules using other versions
# of its packages. Run through `build.ps1 Test`, which sets SQLITEREPLICA_MODULE (and
# SQLITEREPLICA_OTHER_YAML for the isolation test).

Describe 'SqliteReplica module manifest and exports' -Tag 'Unit' {
    BeforeAll {
        $modulePath = $env:SQLITEREPLICA_MODULE
        if ([string]::IsNullOrWhiteSpace($modulePath) -or -not (Test-Path -LiteralPath $modulePath)) {
            throw "SQLITEREPLICA_MODULE must name the built SqliteReplica.psd1 (got '$modulePath'); run the tests through build.ps1 Test."
        }
        $moduleDir = Split-Path -Parent $modulePath
        $manifest = Import-PowerShellDataFile -LiteralPath $modulePath
        $module = Import-Module -Name $modulePath -Force -PassThru -ErrorAction Stop

        $expectedCmdlets = @(
            'Get-ReplicaGeneration'
            'Get-ReplicaSnapshot'
            'Get-ReplicaWalSegment'
            'Get-SqliteReplicationStatus'
            'Restore-SqliteReplica'
            'Start-SqliteReplication'
            'Test-ReplicaRestore'
        )
    }

    AfterAll {
        Remove-Module -Name SqliteReplica -Force -ErrorAction Ignore
    }

    It 'imports from the build output with the stamped version' {
        $module.Name | Should -Be 'SqliteReplica'
        $module.ModuleBase | Should -Be $moduleDir
        $module.Version | Should -Be ([version] $manifest.ModuleVersion)
    }

    It 'declares PowerShell 7.6 on Core' {
        $manifest.CompatiblePSEditions | Should -Be @('Core')
        $manifest.PowerShellVersion | Should -Be '7.6'
    }

    It 'lists exactly the module''s cmdlets in the manifest, without wildcards' {
        @($manifest.CmdletsToExport | Sort-Object) | Should -Be $expectedCmdlets
    }

    It 'exports exactly the module''s cmdlets' {
        @($module.ExportedCmdlets.Keys | Sort-Object) | Should -Be $expectedCmdlets
    }

    It 'exports no functions, aliases or variables' {
        $module.ExportedFunctions.Count | Should -Be 0
        $module.ExportedAliases.Count | Should -Be 0
        $module.ExportedVariables.Count | Should -Be 0
    }

    It 'keeps only the cmdlet DLL at the top level and the engine with its packages in dependencies/' {
        $topLevel = @(Get-ChildItem -LiteralPath $moduleDir -File | ForEach-Object Name)
        $topLevel | Should -Contain 'SqliteReplica.dll'
        $topLevel | Should -Not -Contain 'SqliteReplica.Engine.dll'
        $topLevel | Should -Not -Contain 'Microsoft.Data.Sqlite.dll'
        $topLevel | Should -Not -Contain 'YamlDotNet.dll'

        $dependencies = Join-Path $moduleDir 'dependencies'
        foreach ($relative in 'SqliteReplica.Engine.dll', 'SqliteReplica.Engine.deps.json', 'Microsoft.Data.Sqlite.dll',
            'YamlDotNet.dll', 'runtimes/linux-x64/native/libe_sqlite3.so') {
            Join-Path $dependencies $relative | Should -Exist
        }
    }
}

Describe 'Dependency isolation' -Tag 'Integration' {
    BeforeAll {
        $modulePath = $env:SQLITEREPLICA_MODULE
        $otherYaml = $env:SQLITEREPLICA_OTHER_YAML
        if ([string]::IsNullOrWhiteSpace($modulePath) -or -not (Test-Path -LiteralPath $modulePath)) {
            throw "SQLITEREPLICA_MODULE must name the built SqliteReplica.psd1 (got '$modulePath'); run the tests through build.ps1 Test."
        }
        if ([string]::IsNullOrWhiteSpace($otherYaml) -or -not (Test-Path -LiteralPath $otherYaml)) {
            throw "SQLITEREPLICA_OTHER_YAML must name a YamlDotNet.dll of another version (got '$otherYaml'); run the tests through build.ps1 Test."
        }
        $moduleYamlVersion = [Reflection.AssemblyName]::GetAssemblyName(
            (Join-Path (Split-Path -Parent $modulePath) 'dependencies/YamlDotNet.dll')).Version
        $otherYamlVersion = [Reflection.AssemblyName]::GetAssemblyName($otherYaml).Version

        $emptyReplica = Join-Path $TestDrive 'empty-replica'
        $null = New-Item -ItemType Directory -Path $emptyReplica
        $reportPath = Join-Path $TestDrive 'isolation-report.json'

        # Runs in a fresh pwsh: another module's YamlDotNet is loaded first, then ours.
        # Every step is recorded, so one failing step does not hide the others' results.
        $childScript = Join-Path $TestDrive 'isolation.ps1'
        Set-Content -LiteralPath $childScript -Encoding utf8NoBOM -Value @'
param([string] $ModulePath, [string] $OtherYaml, [string] $ReplicaPath, [string] $ReportPath)
$ErrorActionPreference = 'Stop'
$report = [ordered]@{ Steps = [ordered]@{}; SnapshotCount = $null; CmdletError = $null; SqliteVersion = $null; Assemblies = @() }

function Step([string] $Name, [scriptblock] $Action) {
    try { & $Action; $report.Steps[$Name] = 'ok' }
    catch { $report.Steps[$Name] = "$($_.FullyQualifiedErrorId): $($_.Exception.Message)" }
}

Step 'LoadOtherYaml' { Add-Type -LiteralPath $OtherYaml }
Step 'ImportModule' { Import-Module -Name $ModulePath -ErrorAction Stop }
Step 'GetReplicaSnapshot' {
    $errors = $null
    $output = @(Get-ReplicaSnapshot -ReplicaPath $ReplicaPath -ErrorVariable errors -ErrorAction SilentlyContinue)
    $report.SnapshotCount = $output.Count
    if ($errors) { $report.CmdletError = @($errors | ForEach-Object { "$($_.FullyQualifiedErrorId): $($_.Exception.Message)" }) }
}

# Ask the module's private context for its own packages, as the engine would.
$context = [System.Runtime.Loader.AssemblyLoadContext]::All | Where-Object Name -EQ 'SqliteReplica' | Select-Object -First 1
Step 'PrivateYaml' {
    if (-not $context) { throw 'no SqliteReplica load context: the engine was never loaded' }
    $null = $context.LoadFromAssemblyName([Reflection.AssemblyName]::new('YamlDotNet'))
}
Step 'PrivateSqlite' {
    if (-not $context) { throw 'no SqliteReplica load context: the engine was never loaded' }
    # Opening a connection loads the native e_sqlite3 through the private context.
    $sqlite = $context.LoadFromAssemblyName([Reflection.AssemblyName]::new('Microsoft.Data.Sqlite'))
    $connection = [Activator]::CreateInstance($sqlite.GetType('Microsoft.Data.Sqlite.SqliteConnection', $true), @('Data Source=:memory:'))
    try {
        $connection.Open()
        $command = $connection.CreateCommand()
        $command.CommandText = 'SELECT sqlite_version()'
        $report.SqliteVersion = [string] $command.ExecuteScalar()
    }
    finally { $connection.Dispose() }
}

$report.Assemblies = @(
    foreach ($alc in [System.Runtime.Loader.AssemblyLoadContext]::All) {
        foreach ($assembly in $alc.Assemblies) {
            $name = $assembly.GetName()
            if ($name.Name -in 'YamlDotNet', 'SqliteReplica', 'SqliteReplica.Engine', 'Microsoft.Data.Sqlite') {
                [ordered]@{ Name = $name.Name; Version = $name.Version.ToString(); Context = [string] $alc.Name }
            }
        }
    })
$report | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $ReportPath -Encoding utf8NoBOM
'@

        # The same pwsh as this one, started fresh (as '<dotnet> <PSHOME>/pwsh.dll' for the .NET tool).
        $pwshPath = [Environment]::ProcessPath
        $pwshPrefix = @()
        if ([IO.Path]::GetFileNameWithoutExtension($pwshPath) -eq 'dotnet') {
            $pwshPrefix = @(Join-Path $PSHOME 'pwsh.dll')
        }
        $childOutput = & $pwshPath @pwshPrefix -NoProfile -NonInteractive -File $childScript `
            -ModulePath $modulePath -OtherYaml $otherYaml -ReplicaPath $emptyReplica -ReportPath $reportPath 2>&1 |
            Out-String
        $childExitCode = $LASTEXITCODE
        if (-not (Test-Path -LiteralPath $reportPath)) {
            throw "The isolation child pwsh exited $childExitCode without a report. Output:`n$childOutput"
        }
        $report = Get-Content -Raw -LiteralPath $reportPath | ConvertFrom-Json
        $yamls = @($report.Assemblies | Where-Object Name -EQ 'YamlDotNet')
    }

    It 'imports the module after another YamlDotNet version was loaded' {
        $report.Steps.LoadOtherYaml | Should -Be 'ok'
        $report.Steps.ImportModule | Should -Be 'ok'
    }

    It 'runs Get-ReplicaSnapshot on an empty replica without error and returns nothing' {
        $report.Steps.GetReplicaSnapshot | Should -Be 'ok'
        $report.CmdletError | Should -BeNullOrEmpty
        $report.SnapshotCount | Should -Be 0
    }

    It 'loads the cmdlet DLL in the default context and the engine only in its private context' {
        @($report.Assemblies | Where-Object Name -EQ 'SqliteReplica' | ForEach-Object Context) | Should -Be @('Default')
        @($report.Assemblies | Where-Object Name -EQ 'SqliteReplica.Engine' | ForEach-Object Context) | Should -Be @('SqliteReplica')
    }

    It 'keeps the other YamlDotNet in the default context' {
        $default = @($yamls | Where-Object Context -EQ 'Default')
        $default.Count | Should -Be 1
        $default[0].Version | Should -Be $otherYamlVersion.ToString()
    }

    It "loads the module's own YamlDotNet side by side in its private context" {
        $report.Steps.PrivateYaml | Should -Be 'ok'
        $private = @($yamls | Where-Object Context -EQ 'SqliteReplica')
        $private.Count | Should -Be 1
        $private[0].Version | Should -Be $moduleYamlVersion.ToString()
        $private[0].Version | Should -Not -Be $otherYamlVersion.ToString()
    }

    It 'resolves Microsoft.Data.Sqlite and the native e_sqlite3 from dependencies/' {
        $report.Steps.PrivateSqlite | Should -Be 'ok'
        $report.SqliteVersion | Should -Match '^3\.\d+\.\d+'
        @($report.Assemblies | Where-Object Name -EQ 'Microsoft.Data.Sqlite' | ForEach-Object Context) | Should -Be @('SqliteReplica')
    }
}

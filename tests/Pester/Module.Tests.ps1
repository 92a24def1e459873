#Requires -Version 7.6
# The built module as a whole: its manifest and exports, its on-disk layout, and the
# dependency isolation that lets it share a session with modules using other versions
# of its packages. Run through `build.ps1 Test`, which sets SQLITEREPLICA_MODULE (and
# SQLITEREPLICA_OTHER_YAML for the isolation test; SQLITEREPLICA_OTHER_AWSSDK_CORE,
# SQLITEREPLICA_OTHER_SQLITE, SQLITEREPLICA_OTHER_SQLITEPCL and SQLITEREPLICA_WRITER for the
# coexistence test, which also starts moto_server).

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

Describe 'Coexistence with other versions of AWSSDK.Core and Microsoft.Data.Sqlite' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'IntegrationHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'S3Fixture.psm1') -Force

        $modulePath = $env:SQLITEREPLICA_MODULE
        if ([string]::IsNullOrWhiteSpace($modulePath) -or -not (Test-Path -LiteralPath $modulePath)) {
            throw "SQLITEREPLICA_MODULE must name the built SqliteReplica.psd1 (got '$modulePath'); run the tests through build.ps1 Test."
        }
        $others = [ordered]@{
            SQLITEREPLICA_OTHER_SQLITEPCL   = $env:SQLITEREPLICA_OTHER_SQLITEPCL
            SQLITEREPLICA_OTHER_SQLITE      = $env:SQLITEREPLICA_OTHER_SQLITE
            SQLITEREPLICA_OTHER_AWSSDK_CORE = $env:SQLITEREPLICA_OTHER_AWSSDK_CORE
        }
        foreach ($name in $others.Keys) {
            if ([string]::IsNullOrWhiteSpace($others[$name]) -or -not (Test-Path -LiteralPath $others[$name])) {
                throw "$name must name a DLL of another version than the module's (got '$($others[$name])'); run the tests through build.ps1 Test."
            }
        }
        $dependencies = Join-Path (Split-Path -Parent $modulePath) 'dependencies'
        $versionOf = { param($path) [Reflection.AssemblyName]::GetAssemblyName($path).Version.ToString() }
        $script:Versions = @{
            OtherAws    = & $versionOf $env:SQLITEREPLICA_OTHER_AWSSDK_CORE
            OtherSqlite = & $versionOf $env:SQLITEREPLICA_OTHER_SQLITE
            ModuleAws    = & $versionOf (Join-Path $dependencies 'AWSSDK.Core.dll')
            ModuleSqlite = & $versionOf (Join-Path $dependencies 'Microsoft.Data.Sqlite.dll')
        }

        # A small S3 replica on moto, made by the module in a separate replicator process.
        $script:SavedCredentials = @{
            LITESTREAM_ACCESS_KEY_ID     = $env:LITESTREAM_ACCESS_KEY_ID
            LITESTREAM_SECRET_ACCESS_KEY = $env:LITESTREAM_SECRET_ACCESS_KEY
        }
        $env:LITESTREAM_ACCESS_KEY_ID = 'AKIASQLITEREPLICATEST'
        $env:LITESTREAM_SECRET_ACCESS_KEY = 'sqlitereplica-test-secret'
        $moto = Start-MotoServer -LogPath (Join-Path $TestDrive 'moto/moto.log')
        $bucket = New-S3Bucket -Endpoint $moto.Endpoint -Name 'coexistence'
        $replicaUrl = "s3://$bucket/app.db"
        $script:SourceDb = (New-TestDatabase -Path (Join-Path $TestDrive 'live/app.db') -Rows 20).Path
        $replicator = Start-TestReplicator -DatabasePath $SourceDb -ReplicaUrl $replicaUrl -Parameters @{ Endpoint = $moto.Endpoint } `
            -LogPath (Join-Path $TestDrive 'replicator/replicator.log')
        $null = Invoke-Writer write --db $SourceDb --count 80 --rows-per-tx 8
        $script:ReplicatorExit = $replicator | Stop-TestReplicator
        $script:ReplicatorSummary = @(Get-ReplicatorSummary -LogPath (Join-Path $TestDrive 'replicator/replicator.log'))

        $emptyReplica = Join-Path $TestDrive 'empty-replica'
        $null = New-Item -ItemType Directory -Path $emptyReplica
        $script:RestoredDb = Join-Path $TestDrive 'restored/app.db'
        $reportPath = Join-Path $TestDrive 'coexistence-report.json'

        # Runs in a fresh pwsh: another module's AWSSDK.Core and Microsoft.Data.Sqlite (with its
        # SQLitePCLRaw.core) are loaded and used first, then ours is imported and does real work.
        # Every step is recorded, so one failing step does not hide the others' results.
        $childScript = Join-Path $TestDrive 'coexistence.ps1'
        Set-Content -LiteralPath $childScript -Encoding utf8NoBOM -Value @'
param([string] $ModulePath, [string] $OtherSqlitePcl, [string] $OtherSqlite, [string] $OtherAws,
    [string] $EmptyReplica, [string] $ReplicaUrl, [string] $Endpoint, [string] $RestoredDb, [string] $ReportPath)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$report = [ordered]@{
    Steps = [ordered]@{}; OtherInUse = [ordered]@{}; SnapshotCount = $null; S3SnapshotCount = $null; CmdletErrors = @()
    Restore = $null; OtherStillUsable = [ordered]@{}; Assemblies = @()
}

function Step([string] $Name, [scriptblock] $Action) {
    try { & $Action; $report.Steps[$Name] = 'ok' }
    catch { $report.Steps[$Name] = "$($_.FullyQualifiedErrorId): $($_.Exception.Message)" }
}
function Assert-NoCmdletError($Errors) {
    if ($Errors) {
        $report.CmdletErrors += @($Errors | ForEach-Object { "$($_.FullyQualifiedErrorId): $($_.Exception.Message)" })
        throw "the cmdlet wrote $(@($Errors).Count) error(s)"
    }
}

# Another module's packages, loaded and used first (managed code only, no native SQLite needed).
Step 'LoadOtherSqlitePcl' { Add-Type -LiteralPath $OtherSqlitePcl }
Step 'LoadOtherSqlite' {
    Add-Type -LiteralPath $OtherSqlite
    $builder = [Microsoft.Data.Sqlite.SqliteConnectionStringBuilder]::new('Data Source=other.db;Mode=ReadOnly')
    $report.OtherInUse.Sqlite = $builder.GetType().Assembly.GetName().Version.ToString()
}
Step 'LoadOtherAws' {
    Add-Type -LiteralPath $OtherAws
    $credentials = [Amazon.Runtime.BasicAWSCredentials]::new('other', 'module')
    $report.OtherInUse.Aws = $credentials.GetType().Assembly.GetName().Version.ToString()
}

Step 'ImportModule' { Import-Module -Name $ModulePath -ErrorAction Stop }
Step 'GetReplicaSnapshotFile' {
    $errors = $null
    $report.SnapshotCount = @(Get-ReplicaSnapshot -ReplicaPath $EmptyReplica -ErrorVariable errors -ErrorAction SilentlyContinue).Count
    Assert-NoCmdletError $errors
}
Step 'GetReplicaSnapshotS3' {
    $errors = $null
    $report.S3SnapshotCount = @(Get-ReplicaSnapshot -ReplicaUrl $ReplicaUrl -Endpoint $Endpoint -ErrorVariable errors -ErrorAction SilentlyContinue).Count
    Assert-NoCmdletError $errors
}
Step 'RestoreS3' {
    $errors = $null
    $result = @(Restore-SqliteReplica -ReplicaUrl $ReplicaUrl -Endpoint $Endpoint -OutputPath $RestoredDb -ErrorVariable errors -ErrorAction SilentlyContinue)
    Assert-NoCmdletError $errors
    if ($result.Count -ne 1) { throw "expected one restore result, got $($result.Count)" }
    $report.Restore = [ordered]@{ Position = $result[0].Position; Partial = $result[0].Partial; OutputPath = $result[0].OutputPath }
}

# The other module's types still resolve to its own versions, and still work.
Step 'OtherStillUsable' {
    $report.OtherStillUsable.Sqlite = [Microsoft.Data.Sqlite.SqliteConnectionStringBuilder]::new('Data Source=x.db').GetType().Assembly.GetName().Version.ToString()
    $report.OtherStillUsable.Aws = [Amazon.Runtime.BasicAWSCredentials]::new('a', 'b').GetType().Assembly.GetName().Version.ToString()
}

$report.Assemblies = @(
    foreach ($alc in [System.Runtime.Loader.AssemblyLoadContext]::All) {
        foreach ($assembly in $alc.Assemblies) {
            $name = $assembly.GetName()
            if ($name.Name -in 'AWSSDK.Core', 'AWSSDK.S3', 'Microsoft.Data.Sqlite', 'SQLitePCLRaw.core', 'SqliteReplica', 'SqliteReplica.Engine') {
                [ordered]@{ Name = $name.Name; Version = $name.Version.ToString(); Context = [string] $alc.Name; Location = $assembly.Location }
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
            -ModulePath $modulePath -OtherSqlitePcl $env:SQLITEREPLICA_OTHER_SQLITEPCL -OtherSqlite $env:SQLITEREPLICA_OTHER_SQLITE `
            -OtherAws $env:SQLITEREPLICA_OTHER_AWSSDK_CORE -EmptyReplica $emptyReplica -ReplicaUrl $replicaUrl -Endpoint $moto.Endpoint `
            -RestoredDb $RestoredDb -ReportPath $reportPath 2>&1 |
            Out-String
        $childExitCode = $LASTEXITCODE
        if (-not (Test-Path -LiteralPath $reportPath)) {
            throw "The coexistence child pwsh exited $childExitCode without a report. Output:`n$childOutput"
        }
        $script:Report = Get-Content -Raw -LiteralPath $reportPath | ConvertFrom-Json
        $script:ReportText = Get-Content -Raw -LiteralPath $reportPath

        function Get-LoadedAssembly {
            # The loaded copies of one assembly, as Version and Context.
            param([Parameter(Mandatory)][string]$Name)
            @($Report.Assemblies | Where-Object Name -EQ $Name)
        }
    }

    AfterAll {
        Stop-TestProcess -All
        foreach ($name in $SavedCredentials.Keys) {
            [Environment]::SetEnvironmentVariable($name, $SavedCredentials[$name])
        }
    }

    It 'made a small S3 replica with the module first (the replicator caught up and exited 0)' {
        $ReplicatorExit | Should -Be 0
        @($ReplicatorSummary | ForEach-Object CaughtUp) | Should -Be @($true)
    }

    It 'loads and uses the other AWSSDK.Core and Microsoft.Data.Sqlite before the module' {
        $Versions.OtherAws | Should -Not -Be $Versions.ModuleAws
        $Versions.OtherSqlite | Should -Not -Be $Versions.ModuleSqlite
        $Report.Steps.LoadOtherSqlitePcl | Should -Be 'ok'
        $Report.Steps.LoadOtherSqlite | Should -Be 'ok'
        $Report.Steps.LoadOtherAws | Should -Be 'ok'
        $Report.OtherInUse.Sqlite | Should -Be $Versions.OtherSqlite
        $Report.OtherInUse.Aws | Should -Be $Versions.OtherAws
    }

    It 'then imports the module and lists an empty file replica without error' {
        $Report.Steps.ImportModule | Should -Be 'ok'
        $Report.Steps.GetReplicaSnapshotFile | Should -Be 'ok' -Because $ReportText
        $Report.SnapshotCount | Should -Be 0
        @($Report.CmdletErrors) | Should -BeNullOrEmpty
    }

    It 'lists and restores the S3 replica through its own AWSSDK and SQLite, equal to the source' {
        $Report.Steps.GetReplicaSnapshotS3 | Should -Be 'ok' -Because $ReportText
        $Report.S3SnapshotCount | Should -BeGreaterThan 0
        $Report.Steps.RestoreS3 | Should -Be 'ok' -Because $ReportText
        $Report.Restore.Partial | Should -BeFalse
        $restored = Get-DbDump -Path $RestoredDb
        $restored.integrity | Should -Be 'ok'
        $restored.digest | Should -Be (Get-DbDump -Path $SourceDb).digest
    }

    It 'keeps the other AWSSDK.Core in the default context and its own in the private context' {
        $aws = Get-LoadedAssembly 'AWSSDK.Core'
        @($aws | Where-Object Context -EQ 'Default' | ForEach-Object Version) | Should -Be @($Versions.OtherAws)
        @($aws | Where-Object Context -EQ 'SqliteReplica' | ForEach-Object Version) | Should -Be @($Versions.ModuleAws)
        @(Get-LoadedAssembly 'AWSSDK.S3' | ForEach-Object Context) | Should -Be @('SqliteReplica')
    }

    It 'keeps the other Microsoft.Data.Sqlite (and SQLitePCLRaw.core) in the default context and its own in the private context' {
        $sqlite = Get-LoadedAssembly 'Microsoft.Data.Sqlite'
        @($sqlite | Where-Object Context -EQ 'Default' | ForEach-Object Version) | Should -Be @($Versions.OtherSqlite)
        @($sqlite | Where-Object Context -EQ 'SqliteReplica' | ForEach-Object Version) | Should -Be @($Versions.ModuleSqlite)
        $pcl = Get-LoadedAssembly 'SQLitePCLRaw.core'
        @($pcl | ForEach-Object Context | Sort-Object) | Should -Be @('Default', 'SqliteReplica')
        @($pcl | Where-Object Context -EQ 'Default' | ForEach-Object Location) | Should -Be @($env:SQLITEREPLICA_OTHER_SQLITEPCL)
    }

    It 'leaves the other module''s types resolving to its own versions after the import' {
        $Report.Steps.OtherStillUsable | Should -Be 'ok' -Because $ReportText
        $Report.OtherStillUsable.Sqlite | Should -Be $Versions.OtherSqlite
        $Report.OtherStillUsable.Aws | Should -Be $Versions.OtherAws
    }
}

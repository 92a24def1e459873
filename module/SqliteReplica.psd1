@{
    # The module's root DLL: cmdlets only. The engine and its packages live in dependencies/
    # and load in a private AssemblyLoadContext (see src/Cmdlets/Loading).
    RootModule           = 'SqliteReplica.dll'

    # Stamped by build.ps1 from Directory.Build.props (VersionPrefix), the one version source.
    ModuleVersion        = '0.1.0'

    GUID                 = 'f8984303-7737-4abe-bc8e-33a236d59905'
    Author               = 'SqliteReplica contributors'
    CompanyName          = 'SqliteReplica contributors'
    Copyright            = '(c) SqliteReplica contributors.'
    Description          = 'Continuous, Litestream-compatible replication of SQLite databases to file and S3-compatible replicas, with point-in-time restore.'

    CompatiblePSEditions = @('Core')
    PowerShellVersion    = '7.6'

    FormatsToProcess     = @('SqliteReplica.Format.ps1xml')

    CmdletsToExport      = @(
        'Start-SqliteReplication'
        'Restore-SqliteReplica'
        'Get-ReplicaSnapshot'
        'Get-ReplicaGeneration'
        'Get-ReplicaWalSegment'
        'Get-SqliteReplicationStatus'
        'Test-ReplicaRestore'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()

    PrivateData          = @{
        PSData = @{
            Tags = @('SQLite', 'Litestream', 'Replication', 'Backup', 'S3')
        }
    }
}

#Requires -Version 7.6
<#
.SYNOPSIS
    Compiles the cmdlet help written in docs/cmdlets/<Verb-Noun>.md into the MAML file that
    Get-Help reads for a binary module (<ModuleBase>/en-US/<RootModule>-Help.xml).

.DESCRIPTION
    build.ps1 (task Build) runs this script in a child pwsh, after the module is built:

        HelpConverter.ps1 -ModuleManifest out/SqliteReplica/SqliteReplica.psd1 `
            -MarkdownPath docs/cmdlets -OutputPath out/SqliteReplica/en-US/SqliteReplica.dll-Help.xml

    It imports the built module, so everything the cmdlets already know comes from their
    metadata and cannot drift: parameter types, parameter sets, which parameters are required,
    positions, aliases, pipeline input, and the SYNTAX section (one entry per parameter set).
    The markdown supplies the prose only. (Get-Help shows one "Required?" and one "Position?" per
    parameter: for a parameter whose sets differ, the values of the cmdlet's default parameter
    set, else of its first set; the SYNTAX section shows each set exactly, and the parameter's
    text says the rest.)

    THE MARKDOWN SHAPE (one file per exported cmdlet, named <Verb-Noun>.md)

        # Verb-Noun                          must match the file name and an exported cmdlet

        ## SYNOPSIS
        One short paragraph.

        ## DESCRIPTION
        Paragraphs.

        ## PARAMETERS

        ### -Name                            one subsection per parameter, every parameter the
        Paragraphs.                          cmdlet has except the common parameters (-WhatIf and
                                             -Confirm are documented); none it does not have
        Default: 8                           optional line: the "Default value" Get-Help shows
                                             (it is taken out of the description)

        ## EXAMPLES

        ### Example 1: What it shows         "Example <n>: <title>", numbered from 1
        <!-- runnable -->                    optional marker, not shown: tests/Pester/Help.Tests.ps1
                                             runs the example as it is, in a copy of a sample folder
                                             holding app.db (a live database), backups/app.db (its
                                             file replica) and litestream.yml (app.db -> backups/app.db);
                                             mark only examples that need nothing else
        ```powershell
        code, exactly one fenced block
        ```
        Paragraphs explaining the example.

        ## INPUTS                            optional; ### <type name> + paragraphs
        ## OUTPUTS                           ### <type name> + paragraphs
        ## NOTES                             optional; paragraphs
        ## RELATED LINKS
        - [Text](https://address)            a link with an address
        - Get-ReplicaSnapshot                a cmdlet or topic name

    The sections come in this order; SYNOPSIS, DESCRIPTION, PARAMETERS, EXAMPLES, OUTPUTS and
    RELATED LINKS are required.

    Text: lines of a paragraph are joined; a blank line ends a paragraph; "- " starts a list
    item (shown as its own paragraph, dash kept; indented lines continue it); a fenced block
    inside prose is kept verbatim as one paragraph; inline markdown stays as written
    (`code` keeps its backticks) except [text](address), which becomes "text (address)".
    HTML comments on a line of their own are dropped.

    A file that does not have this shape stops the build, naming the file and line. A cmdlet
    without a file, a parameter without a subsection or a subsection for a parameter the cmdlet
    does not have is only a warning here (the help still builds, so that work in progress on a
    cmdlet is never blocked by its help); tests/Pester/Help.Tests.ps1 fails on each of them.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string] $ModuleManifest,
    [Parameter(Mandatory)][string] $MarkdownPath,
    [Parameter(Mandatory)][string] $OutputPath
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$script:SectionOrder = @('SYNOPSIS', 'DESCRIPTION', 'PARAMETERS', 'EXAMPLES', 'INPUTS', 'OUTPUTS', 'NOTES', 'RELATED LINKS')
$script:RequiredSections = @('SYNOPSIS', 'DESCRIPTION', 'PARAMETERS', 'EXAMPLES', 'OUTPUTS', 'RELATED LINKS')

$script:Namespaces = [ordered]@{
    maml    = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev     = 'http://schemas.microsoft.com/maml/dev/2004/10'
    MSHelp  = 'http://msdn.microsoft.com/mshelp'
}

# --- Markdown --------------------------------------------------------------------------------

function New-ParseError {
    param([string] $File, [int] $Line, [string] $Message)
    [System.FormatException]::new("${File}:${Line}: $Message")
}

function Get-MarkdownLine {
    # The file's lines with their numbers, fenced blocks marked, so that '#' comments inside
    # PowerShell code are never taken for headings.
    param([Parameter(Mandatory)][string] $Path)
    $lines = [System.IO.File]::ReadAllLines($Path)
    $inFence = $false
    for ($i = 0; $i -lt $lines.Length; $i++) {
        $text = $lines[$i]
        $isFence = $text -match '^\s*```'
        [pscustomobject]@{
            Number  = $i + 1
            Text    = $text
            IsFence = $isFence
            InFence = $inFence -and -not $isFence
        }
        if ($isFence) { $inFence = -not $inFence }
    }
    if ($inFence) {
        throw (New-ParseError $Path $lines.Length 'a fenced code block is not closed.')
    }
}

function Split-MarkdownHeading {
    # Splits lines at headings of one level ('## ' or '### '), outside fenced blocks. Returns the
    # lines before the first heading (Title $null) and one group per heading.
    param([object[]] $Lines, [Parameter(Mandatory)][int] $Level)
    $marker = ('#' * $Level) + ' '
    $current = [pscustomobject]@{ Title = $null; Line = 0; Lines = [System.Collections.Generic.List[object]]::new() }
    foreach ($line in $Lines) {
        if (-not $line.InFence -and -not $line.IsFence -and $line.Text.StartsWith($marker)) {
            $current
            $current = [pscustomobject]@{ Title = $line.Text.Substring($marker.Length).Trim(); Line = $line.Number; Lines = [System.Collections.Generic.List[object]]::new() }
        }
        else {
            $current.Lines.Add($line)
        }
    }
    $current
}

function Test-Blank {
    param([object[]] $Lines)
    -not ($Lines | Where-Object { -not [string]::IsNullOrWhiteSpace($_.Text) -and $_.Text.Trim() -notmatch '^<!--.*-->$' })
}

function Format-InlineText {
    param([string] $Text)
    # [text](address) -> text (address); everything else as written.
    [regex]::Replace($Text, '\[([^\]]+)\]\(([^)\s]+)\)', '$1 ($2)')
}

function ConvertTo-Paragraph {
    # Prose lines -> paragraphs (strings), as described at the top of this file.
    param([object[]] $Lines, [string] $File)
    $paragraphs = [System.Collections.Generic.List[string]]::new()
    $buffer = [System.Collections.Generic.List[string]]::new()
    $code = $null
    $flush = {
        if ($buffer.Count -gt 0) {
            $paragraphs.Add((Format-InlineText (($buffer | ForEach-Object Trim) -join ' ')))
            $buffer.Clear()
        }
    }
    foreach ($line in $Lines) {
        if ($line.IsFence) {
            if ($null -eq $code) {
                . $flush
                $code = [System.Collections.Generic.List[string]]::new()
            }
            else {
                $paragraphs.Add(($code -join "`n"))
                $code = $null
            }
            continue
        }
        if ($null -ne $code) {
            $code.Add($line.Text)
            continue
        }
        $text = $line.Text
        if ([string]::IsNullOrWhiteSpace($text)) {
            . $flush
            continue
        }
        if ($text.Trim() -match '^<!--.*-->$') {
            continue
        }
        if ($text -match '^#{1,6} ') {
            throw (New-ParseError $File $line.Number "unexpected heading '$text' here.")
        }
        if ($text -match '^\s{0,3}[-*] ') {
            . $flush
            $buffer.Add('- ' + ($text -replace '^\s{0,3}[-*] ', ''))
            continue
        }
        $buffer.Add($text)
    }
    . $flush
    $paragraphs.ToArray()
}

function ConvertFrom-CmdletMarkdown {
    # Parses one docs/cmdlets/<Verb-Noun>.md into a help object (Name, Synopsis, Description,
    # Parameters, Examples, Inputs, Outputs, Notes, Links).
    param([Parameter(Mandatory)][string] $Path)
    $file = [System.IO.Path]::GetFileName($Path)
    $lines = @(Get-MarkdownLine -Path $Path)

    $top = @(Split-MarkdownHeading -Lines $lines -Level 1)
    if ($top.Count -ne 2 -or -not (Test-Blank $top[0].Lines)) {
        throw (New-ParseError $file 1 "expected exactly one '# Verb-Noun' title, at the top.")
    }
    $name = $top[1].Title
    $expected = [System.IO.Path]::GetFileNameWithoutExtension($Path)
    if ($name -cne $expected) {
        throw (New-ParseError $file $top[1].Line "the title '$name' does not match the file name '$expected'.")
    }

    $groups = @(Split-MarkdownHeading -Lines $top[1].Lines -Level 2)
    if (-not (Test-Blank $groups[0].Lines)) {
        throw (New-ParseError $file $top[1].Line "text between the title and '## SYNOPSIS'.")
    }
    $sections = [ordered]@{}
    $lastOrder = -1
    foreach ($group in $groups | Select-Object -Skip 1) {
        $order = [array]::IndexOf($script:SectionOrder, $group.Title)
        if ($order -lt 0) {
            throw (New-ParseError $file $group.Line "unknown section '## $($group.Title)' (known: $($script:SectionOrder -join ', ')).")
        }
        if ($order -le $lastOrder) {
            throw (New-ParseError $file $group.Line "section '## $($group.Title)' is repeated or out of order (order: $($script:SectionOrder -join ', ')).")
        }
        $lastOrder = $order
        $sections[$group.Title] = $group
    }
    foreach ($required in $script:RequiredSections) {
        if (-not $sections.Contains($required)) {
            throw (New-ParseError $file 1 "the required section '## $required' is missing.")
        }
    }

    $help = [ordered]@{
        Name        = $name
        Synopsis    = ''
        Description = @()
        Parameters  = [ordered]@{}
        Examples    = [System.Collections.Generic.List[object]]::new()
        Inputs      = [System.Collections.Generic.List[object]]::new()
        Outputs     = [System.Collections.Generic.List[object]]::new()
        Notes       = @()
        Links       = [System.Collections.Generic.List[object]]::new()
    }

    $synopsis = @(ConvertTo-Paragraph -Lines $sections['SYNOPSIS'].Lines -File $file)
    if ($synopsis.Count -ne 1) {
        throw (New-ParseError $file $sections['SYNOPSIS'].Line 'the synopsis must be exactly one paragraph.')
    }
    $help.Synopsis = $synopsis[0]

    $help.Description = @(ConvertTo-Paragraph -Lines $sections['DESCRIPTION'].Lines -File $file)
    if ($help.Description.Count -eq 0) {
        throw (New-ParseError $file $sections['DESCRIPTION'].Line 'the description is empty.')
    }

    # Parameters.
    $parameterGroups = @(Split-MarkdownHeading -Lines $sections['PARAMETERS'].Lines -Level 3)
    if (-not (Test-Blank $parameterGroups[0].Lines)) {
        throw (New-ParseError $file $sections['PARAMETERS'].Line "text before the first '### -Name'.")
    }
    foreach ($group in $parameterGroups | Select-Object -Skip 1) {
        if ($group.Title -notmatch '^-([A-Za-z][A-Za-z0-9]*)$') {
            throw (New-ParseError $file $group.Line "a parameter heading is '### -Name', not '### $($group.Title)'.")
        }
        $parameterName = $Matches[1]
        if ($help.Parameters.Contains($parameterName)) {
            throw (New-ParseError $file $group.Line "the parameter -$parameterName is documented twice.")
        }
        $default = $null
        $prose = [System.Collections.Generic.List[object]]::new()
        foreach ($line in $group.Lines) {
            if (-not $line.InFence -and -not $line.IsFence -and $line.Text -match '^Default:\s*(.+?)\s*$') {
                $default = $Matches[1]
            }
            else {
                $prose.Add($line)
            }
        }
        $help.Parameters[$parameterName] = [pscustomobject]@{
            Name         = $parameterName
            Description  = @(ConvertTo-Paragraph -Lines $prose -File $file)
            DefaultValue = $default
            Line         = $group.Line
        }
    }

    # Examples.
    $exampleGroups = @(Split-MarkdownHeading -Lines $sections['EXAMPLES'].Lines -Level 3)
    if (-not (Test-Blank $exampleGroups[0].Lines)) {
        throw (New-ParseError $file $sections['EXAMPLES'].Line "text before the first '### Example 1: ...'.")
    }
    $number = 0
    foreach ($group in $exampleGroups | Select-Object -Skip 1) {
        $number++
        if ($group.Title -notmatch '^Example (\d+): (\S.*)$' -or [int] $Matches[1] -ne $number) {
            throw (New-ParseError $file $group.Line "expected '### Example ${number}: <title>', found '### $($group.Title)'.")
        }
        $title = $Matches[2]
        $fences = @($group.Lines | Where-Object IsFence)
        if ($fences.Count -ne 2) {
            throw (New-ParseError $file $group.Line "an example has exactly one fenced code block (found $($fences.Count / 2)).")
        }
        $open = [array]::IndexOf($group.Lines.ToArray(), $fences[0])
        $close = [array]::IndexOf($group.Lines.ToArray(), $fences[1])
        $before = @($group.Lines | Select-Object -First $open)
        $runnable = $false
        foreach ($line in $before) {
            if ($line.Text.Trim() -eq '<!-- runnable -->') { $runnable = $true }
            elseif (-not [string]::IsNullOrWhiteSpace($line.Text)) {
                throw (New-ParseError $file $line.Number "an example starts with its code block (only '<!-- runnable -->' may come before it).")
            }
        }
        $codeLines = @($group.Lines | Select-Object -Skip ($open + 1) -First ($close - $open - 1) | ForEach-Object Text)
        $help.Examples.Add([pscustomobject]@{
            Number   = $number
            Title    = $title
            Language = ($fences[0].Text.Trim() -replace '^```', '').Trim()
            Code     = ($codeLines -join "`n")
            Remarks  = @(ConvertTo-Paragraph -Lines @($group.Lines | Select-Object -Skip ($close + 1)) -File $file)
            Runnable = $runnable
            Line     = $group.Line
        })
    }
    if ($help.Examples.Count -eq 0) {
        throw (New-ParseError $file $sections['EXAMPLES'].Line 'no examples.')
    }

    # Inputs and outputs: '### <type>' + paragraphs.
    foreach ($pair in @(@('INPUTS', $help.Inputs), @('OUTPUTS', $help.Outputs))) {
        if (-not $sections.Contains($pair[0])) { continue }
        $typeGroups = @(Split-MarkdownHeading -Lines $sections[$pair[0]].Lines -Level 3)
        if (-not (Test-Blank $typeGroups[0].Lines)) {
            throw (New-ParseError $file $sections[$pair[0]].Line "text before the first '### <type name>' of $($pair[0]).")
        }
        foreach ($group in $typeGroups | Select-Object -Skip 1) {
            $pair[1].Add([pscustomobject]@{ TypeName = $group.Title; Description = @(ConvertTo-Paragraph -Lines $group.Lines -File $file) })
        }
    }
    if ($help.Outputs.Count -eq 0) {
        throw (New-ParseError $file $sections['OUTPUTS'].Line "no '### <type name>' under OUTPUTS.")
    }

    if ($sections.Contains('NOTES')) {
        $help.Notes = @(ConvertTo-Paragraph -Lines $sections['NOTES'].Lines -File $file)
    }

    foreach ($line in $sections['RELATED LINKS'].Lines) {
        $text = $line.Text.Trim()
        if ($text -eq '' -or $text -match '^<!--.*-->$') { continue }
        if ($text -match '^- \[([^\]]+)\]\((\S+)\)$') {
            $help.Links.Add([pscustomobject]@{ Text = $Matches[1]; Uri = $Matches[2] })
        }
        elseif ($text -match '^- (\S.*)$') {
            $help.Links.Add([pscustomobject]@{ Text = $Matches[1]; Uri = '' })
        }
        else {
            throw (New-ParseError $file $line.Number "a related link is '- [text](address)' or '- Name', not '$text'.")
        }
    }
    if ($help.Links.Count -eq 0) {
        throw (New-ParseError $file $sections['RELATED LINKS'].Line 'no related links.')
    }

    [pscustomobject] $help
}

# --- Metadata ----------------------------------------------------------------------------------

function Get-HelpTypeName {
    # The type as help shows it: Nullable<T> as T, arrays as T[], short names.
    param([Parameter(Mandatory)][type] $Type, [switch] $FullName)
    $underlying = [Nullable]::GetUnderlyingType($Type)
    if ($underlying) { $Type = $underlying }
    if ($FullName) { return $Type.FullName }
    $Type.Name
}

function Get-DocumentedParameter {
    # The cmdlet's parameters that help documents: all but the common parameters (-WhatIf and
    # -Confirm are documented, their meaning differs per cmdlet).
    param([Parameter(Mandatory)][System.Management.Automation.CommandInfo] $Command)
    $common = [System.Management.Automation.Cmdlet]::CommonParameters
    @($Command.Parameters.Values | Where-Object { $_.Name -notin $common })
}

function Get-PipelineInputText {
    param([System.Management.Automation.ParameterMetadata] $Parameter)
    $byValue = $false
    $byName = $false
    foreach ($set in $Parameter.ParameterSets.Values) {
        $byValue = $byValue -or $set.ValueFromPipeline
        $byName = $byName -or $set.ValueFromPipelineByPropertyName
    }
    if ($byValue -and $byName) { return 'True (ByValue, ByPropertyName)' }
    if ($byValue) { return 'True (ByValue)' }
    if ($byName) { return 'True (ByPropertyName)' }
    'False'
}

function Get-MainParameterSet {
    # The parameter set whose values the PARAMETERS section shows for a parameter in several sets
    # with different values: the cmdlet's default set if the parameter is in it, else its first
    # set. (Get-Help shows one Required? and one Position? value; the SYNTAX section has each set's.)
    param([System.Management.Automation.ParameterMetadata] $Parameter, [string] $DefaultSet)
    if ($Parameter.ParameterSets.ContainsKey('__AllParameterSets')) { return $Parameter.ParameterSets['__AllParameterSets'] }
    if ($DefaultSet -and $Parameter.ParameterSets.ContainsKey($DefaultSet)) { return $Parameter.ParameterSets[$DefaultSet] }
    @($Parameter.ParameterSets.Values)[0]
}

# --- MAML --------------------------------------------------------------------------------------

function Write-Para {
    param([System.Xml.XmlWriter] $Writer, [string[]] $Paragraphs)
    foreach ($paragraph in $Paragraphs) {
        $Writer.WriteElementString('maml', 'para', $script:Namespaces.maml, $paragraph)
    }
    if (-not $Paragraphs -or $Paragraphs.Count -eq 0) {
        $Writer.WriteElementString('maml', 'para', $script:Namespaces.maml, '')
    }
}

function Write-Description {
    param([System.Xml.XmlWriter] $Writer, [string[]] $Paragraphs)
    $Writer.WriteStartElement('maml', 'description', $script:Namespaces.maml)
    Write-Para -Writer $Writer -Paragraphs $Paragraphs
    $Writer.WriteEndElement()
}

function Write-DevType {
    param([System.Xml.XmlWriter] $Writer, [string] $TypeName)
    $Writer.WriteStartElement('dev', 'type', $script:Namespaces.dev)
    $Writer.WriteElementString('maml', 'name', $script:Namespaces.maml, $TypeName)
    $Writer.WriteElementString('maml', 'uri', $script:Namespaces.maml, '')
    $Writer.WriteEndElement()
}

function Write-ParameterElement {
    # One <command:parameter>; $Paragraphs is $null inside syntax items.
    param(
        [System.Xml.XmlWriter] $Writer,
        [System.Management.Automation.ParameterMetadata] $Parameter,
        [string] $Required,
        [string] $Position,
        [string[]] $Paragraphs,
        [string] $DefaultValue,
        [switch] $InSyntax
    )
    $isSwitch = $Parameter.SwitchParameter
    $Writer.WriteStartElement('command', 'parameter', $script:Namespaces.command)
    $Writer.WriteAttributeString('required', $Required)
    $Writer.WriteAttributeString('variableLength', $(if ($Parameter.ParameterType.IsArray) { 'true' } else { 'false' }))
    $Writer.WriteAttributeString('globbing', 'false')
    $Writer.WriteAttributeString('pipelineInput', (Get-PipelineInputText $Parameter))
    $Writer.WriteAttributeString('position', $Position)
    $Writer.WriteAttributeString('aliases', $(if ($Parameter.Aliases.Count -gt 0) { $Parameter.Aliases -join ', ' } else { 'none' }))
    $Writer.WriteElementString('maml', 'name', $script:Namespaces.maml, $Parameter.Name)
    if (-not $InSyntax) {
        Write-Description -Writer $Writer -Paragraphs $Paragraphs
    }
    if (-not ($InSyntax -and $isSwitch)) {
        $Writer.WriteStartElement('command', 'parameterValue', $script:Namespaces.command)
        $Writer.WriteAttributeString('required', $(if ($isSwitch) { 'false' } else { 'true' }))
        $Writer.WriteAttributeString('variableLength', $(if ($Parameter.ParameterType.IsArray) { 'true' } else { 'false' }))
        $Writer.WriteString((Get-HelpTypeName $Parameter.ParameterType))
        $Writer.WriteEndElement()
    }
    Write-DevType -Writer $Writer -TypeName (Get-HelpTypeName $Parameter.ParameterType -FullName)
    if (-not $InSyntax) {
        $Writer.WriteElementString('dev', 'defaultValue', $script:Namespaces.dev, $(if ($DefaultValue) { $DefaultValue } else { 'None' }))
    }
    $Writer.WriteEndElement()
}

function Write-CommandHelp {
    param(
        [System.Xml.XmlWriter] $Writer,
        [System.Management.Automation.CommandInfo] $Command,
        [object] $Help
    )
    $verb, $noun = $Command.Name -split '-', 2
    $documented = Get-DocumentedParameter -Command $Command
    $byName = @{}
    foreach ($parameter in $documented) { $byName[$parameter.Name] = $parameter }

    $Writer.WriteStartElement('command', 'command', $script:Namespaces.command)

    $Writer.WriteStartElement('command', 'details', $script:Namespaces.command)
    $Writer.WriteElementString('command', 'name', $script:Namespaces.command, $Command.Name)
    $Writer.WriteElementString('command', 'verb', $script:Namespaces.command, $verb)
    $Writer.WriteElementString('command', 'noun', $script:Namespaces.command, $noun)
    Write-Description -Writer $Writer -Paragraphs @($Help.Synopsis)
    $Writer.WriteEndElement()

    Write-Description -Writer $Writer -Paragraphs $Help.Description

    # SYNTAX: one item per parameter set, default set first; positional parameters by position,
    # then the required ones, then the rest, each group in declaration order.
    $common = [System.Management.Automation.Cmdlet]::CommonParameters
    $sets = @($Command.ParameterSets | Sort-Object { -not $_.IsDefault })
    $Writer.WriteStartElement('command', 'syntax', $script:Namespaces.command)
    foreach ($set in $sets) {
        $members = @($set.Parameters | Where-Object { $_.Name -notin $common })
        $ordered = @($members | Where-Object Position -GE 0 | Sort-Object Position) +
            @($members | Where-Object { $_.Position -lt 0 -and $_.IsMandatory }) +
            @($members | Where-Object { $_.Position -lt 0 -and -not $_.IsMandatory })
        $Writer.WriteStartElement('command', 'syntaxItem', $script:Namespaces.command)
        $Writer.WriteElementString('maml', 'name', $script:Namespaces.maml, $Command.Name)
        foreach ($member in $ordered) {
            Write-ParameterElement -Writer $Writer -Parameter $Command.Parameters[$member.Name] -InSyntax `
                -Required ([string] $member.IsMandatory).ToLowerInvariant() `
                -Position $(if ($member.Position -ge 0) { [string] $member.Position } else { 'named' })
        }
        $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()

    # PARAMETERS: in the markdown's order, then any the markdown lacks (warned about).
    $Writer.WriteStartElement('command', 'parameters', $script:Namespaces.command)
    $names = @($Help.Parameters.Keys | Where-Object { $byName.ContainsKey($_) }) +
        @($documented.Name | Where-Object { -not $Help.Parameters.Contains($_) } | Sort-Object)
    foreach ($name in $names) {
        $parameter = $byName[$name]
        $text = if ($Help.Parameters.Contains($name)) { $Help.Parameters[$name] } else { $null }
        $main = Get-MainParameterSet -Parameter $parameter -DefaultSet $Command.DefaultParameterSet
        Write-ParameterElement -Writer $Writer -Parameter $parameter `
            -Required ([string] $main.IsMandatory).ToLowerInvariant() `
            -Position $(if ($main.Position -ge 0) { [string] $main.Position } else { 'named' }) `
            -Paragraphs $(if ($text) { $text.Description } else { @() }) `
            -DefaultValue $(if ($text) { $text.DefaultValue } else { $null })
    }
    $Writer.WriteEndElement()

    $Writer.WriteStartElement('command', 'inputTypes', $script:Namespaces.command)
    $inputs = if ($Help.Inputs.Count -gt 0) { $Help.Inputs } else { @([pscustomobject]@{ TypeName = 'None'; Description = @('This cmdlet takes no pipeline input.') }) }
    foreach ($item in $inputs) {
        $Writer.WriteStartElement('command', 'inputType', $script:Namespaces.command)
        Write-DevType -Writer $Writer -TypeName $item.TypeName
        Write-Description -Writer $Writer -Paragraphs $item.Description
        $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()

    $Writer.WriteStartElement('command', 'returnValues', $script:Namespaces.command)
    foreach ($item in $Help.Outputs) {
        $Writer.WriteStartElement('command', 'returnValue', $script:Namespaces.command)
        Write-DevType -Writer $Writer -TypeName $item.TypeName
        Write-Description -Writer $Writer -Paragraphs $item.Description
        $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()

    if ($Help.Notes.Count -gt 0) {
        $Writer.WriteStartElement('maml', 'alertSet', $script:Namespaces.maml)
        $Writer.WriteStartElement('maml', 'alert', $script:Namespaces.maml)
        Write-Para -Writer $Writer -Paragraphs $Help.Notes
        $Writer.WriteEndElement()
        $Writer.WriteEndElement()
    }

    $Writer.WriteStartElement('command', 'examples', $script:Namespaces.command)
    foreach ($example in $Help.Examples) {
        $Writer.WriteStartElement('command', 'example', $script:Namespaces.command)
        $Writer.WriteElementString('maml', 'title', $script:Namespaces.maml, "---------- Example $($example.Number): $($example.Title) ----------")
        $Writer.WriteElementString('dev', 'code', $script:Namespaces.dev, $example.Code)
        $Writer.WriteStartElement('dev', 'remarks', $script:Namespaces.dev)
        # The empty paragraph keeps a blank line before the next example's title.
        Write-Para -Writer $Writer -Paragraphs (@($example.Remarks) + '')
        $Writer.WriteEndElement()
        $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()

    $Writer.WriteStartElement('command', 'relatedLinks', $script:Namespaces.command)
    foreach ($link in $Help.Links) {
        $Writer.WriteStartElement('maml', 'navigationLink', $script:Namespaces.maml)
        $Writer.WriteElementString('maml', 'linkText', $script:Namespaces.maml, $link.Text)
        $Writer.WriteElementString('maml', 'uri', $script:Namespaces.maml, $link.Uri)
        $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()

    $Writer.WriteEndElement()   # command:command
}

# --- Main --------------------------------------------------------------------------------------

# Paths relative to the current location, as any PowerShell command takes them.
$ModuleManifest, $MarkdownPath, $OutputPath = foreach ($path in $ModuleManifest, $MarkdownPath, $OutputPath) {
    $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($path)
}
$module = Import-Module -Name $ModuleManifest -PassThru -Force -ErrorAction Stop
$commands = @($module.ExportedCmdlets.Values | Sort-Object Name)
$files = @(Get-ChildItem -LiteralPath $MarkdownPath -Filter '*.md' -File | Sort-Object Name)

$helps = [ordered]@{}
foreach ($file in $files) {
    $help = ConvertFrom-CmdletMarkdown -Path $file.FullName
    if ($help.Name -notin $commands.Name) {
        Write-Warning "$($file.Name): '$($help.Name)' is not a cmdlet the module exports; skipped."
        continue
    }
    $helps[$help.Name] = $help
}

foreach ($command in $commands) {
    if (-not $helps.Contains($command.Name)) {
        Write-Warning "$($command.Name) has no help: add docs/cmdlets/$($command.Name).md."
        continue
    }
    $help = $helps[$command.Name]
    $actual = @(Get-DocumentedParameter -Command $command).Name
    foreach ($name in $actual | Where-Object { -not $help.Parameters.Contains($_) }) {
        Write-Warning "$($command.Name).md does not document the parameter -$name."
    }
    foreach ($name in $help.Parameters.Keys | Where-Object { $_ -notin $actual }) {
        Write-Warning "$($command.Name).md documents -$name, which $($command.Name) does not have; left out."
    }
}

$directory = [System.IO.Path]::GetDirectoryName($OutputPath)
$null = [System.IO.Directory]::CreateDirectory($directory)
$settings = [System.Xml.XmlWriterSettings]::new()
$settings.Indent = $true
$settings.Encoding = [System.Text.UTF8Encoding]::new($false)
$writer = [System.Xml.XmlWriter]::Create($OutputPath, $settings)
try {
    $writer.WriteStartDocument()
    $writer.WriteStartElement('helpItems', 'http://msh')
    $writer.WriteAttributeString('schema', 'maml')
    foreach ($prefix in $script:Namespaces.Keys) {
        $writer.WriteAttributeString('xmlns', $prefix, $null, $script:Namespaces[$prefix])
    }
    foreach ($command in $commands | Where-Object { $helps.Contains($_.Name) }) {
        Write-CommandHelp -Writer $writer -Command $command -Help $helps[$command.Name]
    }
    $writer.WriteEndElement()
    $writer.WriteEndDocument()
}
finally {
    $writer.Dispose()
}

Write-Host "Help for $($helps.Count) of $($commands.Count) cmdlets written to $OutputPath"

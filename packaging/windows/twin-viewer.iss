; Inno Setup 6 script: the Windows installer, from the same PyInstaller one-folder bundle as Linux.
; Not built here (needs Windows). On a Windows build machine, from the repository root:
;   py -3.11 -m venv .venv && .venv\Scripts\pip install -e . pyinstaller
;   .venv\Scripts\pyinstaller packaging\twin-viewer.spec --distpath build\dist --workpath build\work --noconfirm
;   .venv\Scripts\python -m viewer.licences --out build\dist\twin-viewer\_internal\third_party ^
;       --extra "Qt 6, PySide6, shiboken6: GNU LGPL 3.0=packaging\licenses\LGPL-3.0.txt" ^
;       --extra "GNU GPL 3.0 (the LGPL's base text)=packaging\licenses\GPL-3.0.txt"
;   echo {"commit": "<git describe>", "date": "<yyyy-mm-dd>"} > build\dist\twin-viewer\_internal\third_party\build.json
;   iscc /DAppVersion=0.1.0 packaging\windows\twin-viewer.iss      -> build\twin-viewer-0.1.0-setup.exe
; Installs per machine (IT installs, operators use), adds a Start-menu entry (desktop icon optional), opens
; recordings (.mcap) with a double click and offers "Open with Twin Viewer" for layout files (.json is shared
; with other programs, so it is not taken over), and uninstalls from Settings > Apps. Per-user settings live
; in the registry (HKCU\Software\twin-viewer) and logs in %LOCALAPPDATA%\twin-viewer\Logs; the operator policy
; is %PROGRAMDATA%\twin-viewer\policy.json, writable by administrators only.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define Bundle "..\..\build\dist\twin-viewer"

[Setup]
AppId={{6B0F3C52-7E0B-4C1B-9A53-2D5F1E7A9C41}
AppName=Twin Viewer
AppVersion={#AppVersion}
AppPublisher=twin-viewer team
DefaultDirName={autopf}\Twin Viewer
DefaultGroupName=Twin Viewer
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\build
OutputBaseFilename=twin-viewer-{#AppVersion}-setup
SetupIconFile=..\icons\twin-viewer.ico
UninstallDisplayIcon={app}\twin-viewer.exe
Compression=lzma2/max
SolidCompression=yes
ChangesAssociations=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "Create a &desktop icon"; GroupDescription: "Additional icons:"; Flags: unchecked

[Files]
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Dirs]
; The policy folder exists, writable by administrators only (inherited ProgramData ACLs); the policy file
; itself is the administrator's to write (see the README's "Operator mode").
Name: "{commonappdata}\twin-viewer"

[Icons]
Name: "{group}\Twin Viewer"; Filename: "{app}\twin-viewer.exe"
Name: "{group}\Twin Viewer (demo plant)"; Filename: "{app}\twin-viewer.exe"; Parameters: "demo"
Name: "{group}\Uninstall Twin Viewer"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Twin Viewer"; Filename: "{app}\twin-viewer.exe"; Tasks: desktopicon

[Registry]
; Recordings: .mcap opens in the viewer.
Root: HKA; Subkey: "Software\Classes\.mcap\OpenWithProgids"; ValueType: string; ValueName: "TwinViewer.Recording"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\TwinViewer.Recording"; ValueType: string; ValueName: ""; ValueData: "Plant session recording"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\TwinViewer.Recording\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\twin-viewer.exe,0"
Root: HKA; Subkey: "Software\Classes\TwinViewer.Recording\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\twin-viewer.exe"" ""%1"""
; Layouts: offered in "Open with" for .json without taking the extension over.
Root: HKA; Subkey: "Software\Classes\.json\OpenWithProgids"; ValueType: string; ValueName: "TwinViewer.Layout"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\TwinViewer.Layout"; ValueType: string; ValueName: ""; ValueData: "Plant layout (Twin Viewer)"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\TwinViewer.Layout\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\twin-viewer.exe,0"
Root: HKA; Subkey: "Software\Classes\TwinViewer.Layout\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\twin-viewer.exe"" ""%1"""
Root: HKA; Subkey: "Software\Classes\Applications\twin-viewer.exe\SupportedTypes"; ValueType: string; ValueName: ".json"; ValueData: ""; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Applications\twin-viewer.exe\SupportedTypes"; ValueType: string; ValueName: ".mcap"; ValueData: ""

[Run]
Filename: "{app}\twin-viewer.exe"; Parameters: "demo"; Description: "Open the demo plant now"; Flags: nowait postinstall skipifsilent unchecked

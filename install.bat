@echo off
rem Set up ReID Video Search on Windows: a virtual environment in .venv, the project with the
rem right ONNX Runtime, and the default models.
rem
rem   install.bat                     download / export the default models
rem   install.bat --offline DIR       take model files (or checkpoints) from DIR instead
rem   install.bat --cpu | --gpu       force onnxruntime or onnxruntime-gpu
rem   install.bat --no-models         skip the model step
setlocal EnableDelayedExpansion
cd /d "%~dp0"

set "OFFLINE="
set "ORT="
set "MODELS=1"
:parse
if "%~1"=="" goto parsed
if /i "%~1"=="--offline" (set "OFFLINE=%~2" & shift & shift & goto parse)
if /i "%~1"=="--cpu" (set "ORT=onnxruntime" & shift & goto parse)
if /i "%~1"=="--gpu" (set "ORT=onnxruntime-gpu" & shift & goto parse)
if /i "%~1"=="--no-models" (set "MODELS=0" & shift & goto parse)
echo install.bat: unknown option %~1
exit /b 2
:parsed

where py >nul 2>nul && (set "PYTHON=py -3") || (set "PYTHON=python")
%PYTHON% -c "import sys; sys.exit(sys.version_info < (3, 10))" || (echo Python 3.10 or newer is needed & exit /b 1)

echo ==^> Creating the virtual environment in .venv
if not exist .venv\Scripts\python.exe %PYTHON% -m venv .venv || exit /b 1
set "PY=.venv\Scripts\python.exe"
%PY% -m pip install -q --upgrade pip || exit /b 1

rem torch first and pinned: a bare "torch" would pull a different build.
echo ==^> Installing torch 2.13.0
%PY% -m pip install -q torch==2.13.0 || exit /b 1

rem One ONNX Runtime: the GPU build where an NVIDIA GPU is present (it also runs on CPU).
if "%ORT%"=="" (
    set "ORT=onnxruntime"
    nvidia-smi -L >nul 2>nul && set "ORT=onnxruntime-gpu"
)
set "OTHER=onnxruntime-gpu"
if "%ORT%"=="onnxruntime-gpu" set "OTHER=onnxruntime"
%PY% -m pip show -q %OTHER% >nul 2>nul && %PY% -m pip uninstall -q -y %OTHER%
echo ==^> Installing the project with %ORT%
%PY% -m pip install -q -c constraints.txt -e ".[export,train,dev]" %ORT% || exit /b 1

if "%MODELS%"=="1" (
    if not "%OFFLINE%"=="" (
        echo ==^> Taking the models from %OFFLINE%
        %PY% -m core.models fetch --offline "%OFFLINE%" || exit /b 1
    ) else (
        echo ==^> Fetching the default models
        %PY% -m core.models fetch || exit /b 1
    )
)
echo ==^> Done
echo Run the app:    cd GUI ^&^& ..\.venv\Scripts\python.exe main.py
echo Run the tests:  .venv\Scripts\python.exe -m pytest
endlocal

"""IVR: declarative call flows (YAML) executed over FastAGI.

Flows are loaded and checked (``loader``, ``schema``, ``validate``), held in a registry that
reloads them live (``registry``), and run by a pure engine (``engine``) written against ports
(``ports``): the call itself over FastAGI (``agi_control``), prompts and text to speech
(``prompts``, ``tts``), the customer directory, the queue and callbacks (``services`` for the
small in-memory and app_queue back ends).
"""

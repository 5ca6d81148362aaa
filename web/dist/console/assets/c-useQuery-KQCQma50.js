import{u as r,Q as u}from"./c-api-DSszv27t.js";function a(e,s){return r(e,u)}export{a as u};
